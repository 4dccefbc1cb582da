"""What every fix is: the codes it cures, whether it is safe, and one `apply`.

A fix is **safe** when the model computes the same thing afterwards, or exactly what it
claimed to (a padding row that Flatten adds is zero; a softmax over one unit becomes the
sigmoid it stood for), and **unsafe** when the model changes and needs training (an
embedding that now masks, an attention that no longer sees the future): `nandoctor fix`
applies unsafe fixes only with `--unsafe-fixes`, as ruff does. A fix edits a working copy
through an `Editor` and never loads or runs the model.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, ClassVar

from nandoctor.report import AppliedFix, Finding

if TYPE_CHECKING:
    from nandoctor.fix.editors import Editor
    from nandoctor.view import Layer, ModelView, Weight


class Safety(enum.StrEnum):
    SAFE = "safe"
    UNSAFE = "unsafe"


class CannotFix(Exception):
    """The fix does not apply to this finding in this file; the message says why."""


class Prescription:
    """One mechanical fix. `summary` is the sentence each rule's page shows."""

    codes: ClassVar[tuple[str, ...]]
    safety: ClassVar[Safety]
    summary: ClassVar[str]

    def __init__(self, seed: int = 0):
        self.seed = seed

    def applies_to(self, finding: Finding) -> bool:
        return finding.code in self.codes

    def apply(self, editor: Editor, view: ModelView, finding: Finding) -> AppliedFix:
        raise NotImplementedError

    def applied(
        self, finding: Finding, message: str, changes: list[str] | tuple[str, ...] = (), **details
    ) -> AppliedFix:
        return AppliedFix(finding.code, finding.layer, self.safety.value, message, tuple(changes), details)


def embedding_of(view: ModelView, name: str | None) -> tuple[Layer, Weight]:
    """The layer `name` of the view and its 2-D embedding matrix."""
    layer = next((layer for layer in view.layers if layer.name == name), None)
    matrix = layer.embedding_matrix() if layer is not None else None
    if layer is None or matrix is None or len(matrix.shape) != 2:
        raise CannotFix(f"no embedding matrix named {name!r}")
    return layer, matrix
