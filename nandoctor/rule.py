"""The anatomy every rule follows: documentation, metadata, and one `check`.

A rule's class docstring is its documentation, in Markdown, with the sections What it
does / Why is this bad? / Example / Use instead (then optionally Options, Known problems,
References). `nandoctor rule CODE` prints it and `python -m nandoctor.docgen` writes it to
`docs/rules/`; the tests run its Example (must fire the rule) and Use instead (must not).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from typing import Any, ClassVar

from nandoctor.report import Confidence, Finding, Severity
from nandoctor.view import ModelView

REQUIRED_SECTIONS = ("What it does", "Why is this bad?", "Example", "Use instead")
OPTIONAL_SECTIONS = ("Options", "Known problems", "References")


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
    """What rules and the Monitor's detectors share: a code, a severity, a fix, and options."""

    code: ClassVar[str]
    name: ClassVar[str]
    severity: ClassVar[Severity]
    confidence: ClassVar[Confidence] = Confidence.HIGH
    fix: ClassVar[str]
    options: ClassVar[dict[str, Any]] = {}

    def __init__(self, **options: Any):
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            known = ", ".join(sorted(self.options)) or "none"
            raise ValueError(
                f"Unknown option for {self.code} ({self.name}). Expected one of: {known}. "
                f"Received: {', '.join(unknown)}"
            )
        self.settings = {**self.options, **options}


class Rule(Diagnosis):
    # Whether the rule needs every tensor's statistics (the scan then streams them all once),
    # and whether it reads some weight values itself (a padding row, two matrices to compare).
    needs_weights: ClassVar[bool] = False
    reads_weights: ClassVar[bool] = False

    def check(self, view: ModelView) -> Iterator[Finding]:
        raise NotImplementedError

    def finding(
        self,
        layer: str | None,
        message: str,
        *,
        severity: Severity | None = None,
        confidence: Confidence | None = None,
        fix: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> Finding:
        return Finding(
            code=self.code,
            name=self.name,
            severity=severity or self.severity,
            confidence=confidence or self.confidence,
            layer=layer,
            message=message,
            fix=fix or self.fix,
            details=details or {},
        )

def plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"
