"""What a live check is: code that runs (or traces) a live model and raises live rules.

A live check declares the diagnoses whose findings it makes (`raises`) and whether they are
suspicions (the graph checks judge structure) or measurements (the probes run the model).
A measurement with the same code on the same layer as a suspicion, or a static rule's
finding, confirms it (`confirms`): the suspicion rises to high confidence and carries the
probe's evidence. A check states its evidence in its findings: the inputs it used and what
it measured. Checks never change the model's weights or optimizer state: they run forward
passes, or train a reloaded copy.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from nandoctor.diagnosis import Diagnosis, Documented
from nandoctor.report import Finding


def model_backend(model) -> str:
    """The backend a live model runs on: Keras 3's, or TensorFlow for a tf_keras (Keras 2) model."""
    import keras

    return keras.backend.backend() if isinstance(model, keras.Model) else "tensorflow"


class LiveCheck(Documented):
    name: ClassVar[str]
    raises: ClassVar[tuple[type[Diagnosis], ...]]
    # Graph checks raise suspicions; probes measure, and their findings confirm suspicions.
    measures: ClassVar[bool] = True
    # Codes of earlier findings this check settles on the live object (`settle`): a static
    # finding that rests on code the scan cannot see is withdrawn or made sure.
    settles: ClassVar[tuple[str, ...]] = ()
    # Whether it judges only the user's data, `check(model, sample=...)`: without one it does not run.
    needs_sample: ClassVar[bool] = False
    # The Keras backends it runs on, with what it needs there; None: every backend.
    backends: ClassVar[tuple[str, ...] | None] = None
    needs: ClassVar[str] = ""

    def __init__(self, sample=None) -> None:
        # What it could not look at on this model, in words, for the report's notes.
        self.notes: list[str] = []
        # A batch of the user's own data, `(x, y)`, where `check(model, sample=...)` was given one.
        self.sample = sample

    def run(self, model, view) -> Iterator[Finding]:
        raise NotImplementedError

    def settle(self, finding: Finding, model) -> Finding | None:
        """The finding as the live model shows it, or None when the live model disproves it."""
        return finding

    def confirms(self, measured: Finding, suspicion: Finding) -> bool:
        """Whether this check's finding `measured` proves `suspicion` (same code, same layer)."""
        return measured.code == suspicion.code and measured.layer == suspicion.layer

    def absorbs(self, measured: Finding, suspicion: Finding) -> bool:
        """Whether `measured` is said as part of `suspicion` (its message and details) rather
        than as a finding of its own, where it confirms it."""
        return True
