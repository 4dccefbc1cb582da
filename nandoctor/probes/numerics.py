"""The rules the graph checks report under: ND201, ND202, ND203 (DESIGN.md's catalogue)."""

from __future__ import annotations

from dataclasses import dataclass

from nandoctor.report import Confidence, Finding, Severity


@dataclass(frozen=True)
class NumericsRule:
    code: str
    name: str
    fix: str
    severity: Severity = Severity.ERROR

    def finding(self, layer: str, message: str, operation: str) -> Finding:
        return Finding(self.code, self.name, self.severity, Confidence.MEDIUM, layer, message, self.fix,
                       {"operation": operation})


UNGUARDED_DIVISION = NumericsRule(
    "ND201", "unguarded-division",
    "Guard the denominator inside the computation (x / (norm + eps) with a norm whose epsilon is inside its "
    "square root), or use nandoctor.layers.SafeCosineSimilarity / safe_l2_normalize.",
)
SINGULAR_GRADIENT = NumericsRule(
    "ND202", "singular-gradient",
    "Put the epsilon inside the square root: sqrt(sum(x**2) + eps**2) (nandoctor.layers.safe_norm).",
)
UNGUARDED_LOG = NumericsRule(
    "ND203", "unguarded-log",
    "Work in log space (keras.ops.log_softmax, or a loss with from_logits=True), or take log(x + eps).",
)
