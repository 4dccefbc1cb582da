"""What every diagnosis is: a code, a name, a severity, a fix, its options, its
documentation, and where it runs.

A diagnosis's class docstring is its documentation, in Markdown, with the sections What it
does / Why is this bad? / Example / Use instead (then optionally Options, Known problems,
References). `nandoctor rule CODE` prints it and `python -m nandoctor.docgen` writes it to
`docs/rules/`; the tests run its Example (must fire it) and Use instead (must not).

Three kinds derive from `Diagnosis`, one per way in: `Rule` (static, on a `ModelView`: a
file, or a live model's config and weights), `LiveRule` (raised only by the live checks of
`nandoctor.live`, which run the model) and `Detector` (`nandoctor.monitor.detector`, during
training). The one list of them all is `nandoctor.catalogue`.
"""

from __future__ import annotations

import enum
import inspect
import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from nandoctor.report import Confidence, Evidence, Finding, Severity, capped

if TYPE_CHECKING:
    from nandoctor.view import ModelView

REQUIRED_SECTIONS = ("What it does", "Why is this bad?", "Example", "Use instead")
OPTIONAL_SECTIONS = ("Options", "Known problems", "References")


class RunsOn(enum.StrEnum):
    """Where a diagnosis runs, as `nandoctor rules` shows it."""

    FILE = "file"  # the static scan; `check(model)` runs it too, on the live model's view
    LIVE = "live"  # only on a live model: `nandoctor.check`, `nandoctor scan --trust`
    TRAINING = "training"  # during `fit`, in `nandoctor.Monitor`


class Documented:
    """The docstring is the documentation: Markdown with `## Heading` sections."""

    @classmethod
    def documentation(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or "")

    @classmethod
    def sections(cls) -> dict[str, str]:
        """The docstring's `## Heading` sections, by heading, in order."""
        parts = re.split(r"^## +(.+?)\s*$", cls.documentation(), flags=re.MULTILINE)
        return {heading: body.strip() for heading, body in zip(parts[1::2], parts[2::2])}

    @classmethod
    def summary(cls) -> str:
        """The one sentence of `What it does`."""
        return " ".join(cls.sections().get("What it does", "").split())

    @classmethod
    def code_block(cls, section: str) -> str | None:
        match = re.search(r"```python\n(.*?)```", cls.sections().get(section, ""), flags=re.DOTALL)
        return match.group(1) if match else None


class Diagnosis(Documented):
    """What rules, live rules and training detectors share."""

    code: ClassVar[str]
    name: ClassVar[str]
    severity: ClassVar[Severity]
    confidence: ClassVar[Confidence] = Confidence.HIGH
    fix: ClassVar[str]
    # What the diagnosis needs to be sure (config, weights, a live model, training), and what
    # it reports where it cannot be: shown on its page and by `nandoctor rule`.
    evidence: ClassVar[str]
    # The kinds of evidence its findings can rest on; the first is what a finding rests on
    # unless it says otherwise. Its severity is capped by the evidence in `finding`, and
    # nowhere else.
    evidence_kinds: ClassVar[tuple[Evidence, ...]] = (Evidence.CERTAIN,)
    options: ClassVar[dict[str, Any]] = {}
    runs_on: ClassVar[RunsOn]

    def __init__(self, **options: Any):
        self.settings = {**self.options, **self.checked_options(options)}

    @classmethod
    def checked_options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        """`options` if every key is one of this diagnosis's and every value has its
        default's type (an int is accepted for a float); otherwise `ValueError`."""
        unknown = sorted(set(options) - set(cls.options))
        if unknown:
            known = ", ".join(sorted(cls.options)) or "none"
            raise ValueError(
                f"Unknown option for {cls.code} ({cls.name}). Expected one of: {known}. Received: {', '.join(unknown)}"
            )
        for key, value in options.items():
            default = cls.options[key]
            if not _same_kind(value, default):
                raise ValueError(
                    f"Option {key!r} of {cls.code} ({cls.name}) must be {type(default).__name__}, like its "
                    f"default {default!r}. Received: {key}={value!r}"
                )
        return dict(options)

    @classmethod
    def finding(
        cls,
        layer: str | None,
        message: str,
        *,
        severity: Severity | None = None,
        confidence: Confidence | None = None,
        fix: str | None = None,
        details: dict[str, Any] | None = None,
        evidence: Evidence | None = None,
        measured: str | None = None,
    ) -> Finding:
        """A finding of this diagnosis. `evidence` is what it rests on (by default the first
        of `evidence_kinds`), and caps `severity`; `measured` says what a probe or a run
        measured, in words, where the evidence is a measurement."""
        evidence = evidence or cls.evidence_kinds[0]
        if evidence not in cls.evidence_kinds:
            raise ValueError(f"{cls.code} declares evidence {', '.join(cls.evidence_kinds)}. Received: {evidence}")
        details = {**(details or {}), "evidence": evidence.value}
        if measured is not None:
            details["measured"] = measured
        return Finding(
            code=cls.code,
            name=cls.name,
            severity=capped(severity or cls.severity, evidence),
            confidence=confidence or cls.confidence,
            layer=layer,
            message=message,
            fix=fix or cls.fix,
            details=details,
        )

    @staticmethod
    def reconsidered(finding: Finding, *, evidence: Evidence, severity: Severity, **changes: Any) -> Finding:
        """`finding` resting on new evidence (a live model settled it, a probe measured it),
        with the severity that evidence allows."""
        from dataclasses import replace

        details = {**changes.pop("details", finding.details), "evidence": evidence.value}
        return replace(finding, severity=capped(severity, evidence), details=details, **changes)


def _same_kind(value: Any, default: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if default is None:
        return True
    return isinstance(value, type(default))


class Rule(Diagnosis):
    """A static rule: one `check` over a `ModelView`, reading nothing that runs."""

    runs_on = RunsOn.FILE
    # Whether the rule needs every tensor's statistics (the scan then streams them all once),
    # and whether it reads some weight values itself (a padding row, two matrices to compare).
    needs_weights: ClassVar[bool] = False
    reads_weights: ClassVar[bool] = False

    def check(self, view: ModelView) -> Iterator[Finding]:
        raise NotImplementedError


class LiveRule(Diagnosis):
    """A diagnosis only a live model can show: its findings come from the live checks of
    `nandoctor.live` (graph checks and probes), which declare the live rules they raise."""

    runs_on = RunsOn.LIVE

    @classmethod
    def fix_for(cls, operation) -> str:
        """The cure for the traced `operation` a graph check found (a TensorFlow operation or a
        JAX equation read alike); a rule with a cure per cause overrides it."""
        return cls.fix


def plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"
