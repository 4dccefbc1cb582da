"""The loss traced like the forward pass: what the static scan cannot read in a custom loss.

`model.compute_loss` on the model's own outputs is traced with `tf.function`; the
operations the loss adds after the forward pass are judged. A softmax output fed to a
cross-entropy that takes logits (`from_logits=True`, also inside a custom `Loss` class, as
keras-io's NER example does) is ND601; a division, square root or log of a value that can be 0
(`-sum(y * log(p))` or a cosine loss written by hand) is ND201-ND203, judged as the graph checks
judge the forward pass. Keras's own losses clip before their logs and guard their divisions,
and pass.

On TensorFlow, Keras's cross-entropies notice a softmax output given `from_logits=True`,
warn, and use the logits beneath it; JAX and PyTorch apply the softmax twice. The model is
right by accident on one backend: a warning, not an error.
"""

from __future__ import annotations

from collections.abc import Iterator

from nandoctor.live.graph_checks import JUDGED_OPERATIONS, _verdict
from nandoctor.live.live_check import LiveCheck
from nandoctor.live.singular_gradient import SingularGradient
from nandoctor.live.traced_graph import traced_graph
from nandoctor.live.unguarded_division import UnguardedDivision
from nandoctor.live.unguarded_log import UnguardedLog
from nandoctor.report import Confidence, Evidence, Finding, Severity
from nandoctor.rules.loss_activation_mismatch import LossActivationMismatch

# Cross-entropies computed from logits: they apply the softmax themselves.
_FROM_LOGITS = ("SparseSoftmaxCrossEntropyWithLogits", "SoftmaxCrossEntropyWithLogits", "LogSoftmax")
_PASS_THROUGH = ("Identity", "Reshape", "Cast", "ExpandDims", "Squeeze", "Transpose", "StridedSlice")
# What Keras's TensorFlow backend warns when a cross-entropy with from_logits=True gets a softmax.
_KERAS_DOUBLE_SOFTMAX = "does not represent logits"


class LossTrace(LiveCheck):
    """## What it does
    Traces the compiled loss on the model's outputs and finds a softmax output given to a
    cross-entropy that expects logits, and logs in the loss that can take 0.

    ## Why is this bad?
    `from_logits=True` on probabilities applies the softmax twice: the loss flattens, its
    gradients shrink, and the model learns slowly or not at all, without an error. A log of
    a probability that underflows to 0 is -inf, then NaN through the gradients.
    """

    name = "loss-trace"
    raises = (LossActivationMismatch, UnguardedDivision, SingularGradient, UnguardedLog)
    backends = ("tensorflow",)
    needs = "it reads the loss's TensorFlow graph"

    def run(self, model, view) -> Iterator[Finding]:
        if not getattr(model, "compiled", False):
            return
        graph = traced_graph(model, view)
        if graph is None:
            return
        if any(_KERAS_DOUBLE_SOFTMAX in message for message in graph.warnings):
            yield self._double_softmax(
                "Keras's cross-entropy warned that its softmax input 'does not represent "
                "logits' and used the logits beneath it (TensorFlow only)",
                {},
            )
            return
        seen: set[str] = set()
        for op in graph.loss:
            if op.type in _FROM_LOGITS:
                softmax = _softmax_behind(op.inputs[0])
                if softmax is not None and "ND601" not in seen:
                    seen.add("ND601")
                    yield self._double_softmax(
                        f"{op.type} takes '{softmax.name}'", {"operation": op.name, "softmax": softmax.name}
                    )
            elif op.type in JUDGED_OPERATIONS:
                verdict = _verdict(op, f"'{op.name}' in the loss")
                if verdict is not None and verdict[0].code not in seen:
                    rule, message = verdict
                    seen.add(rule.code)
                    yield rule.finding(
                        None,
                        message,
                        details={"operation": op.name, "in": "loss"},
                        evidence=Evidence.CERTAIN,
                        severity=Severity.WARNING,
                        fix=rule.fix_for(op),
                    )

    @staticmethod
    def _double_softmax(evidence: str, details: dict) -> Finding:
        return LossActivationMismatch.finding(
            None,
            f"the loss is computed from logits (from_logits=True) on outputs that already are a softmax "
            f"({evidence}): on JAX and PyTorch the softmax is applied twice, and the loss flattens",
            severity=Severity.WARNING,
            confidence=Confidence.HIGH,
            fix="Give the loss the logits (a linear output layer), or drop from_logits=True.",
            details=details,
        )


def _softmax_behind(tensor, depth: int = 0):
    op = tensor.op
    if op.type == "Softmax":
        return op
    if depth > 8 or op.type not in _PASS_THROUGH:
        return None
    return _softmax_behind(op.inputs[0], depth + 1)
