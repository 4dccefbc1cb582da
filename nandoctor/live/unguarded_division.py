from __future__ import annotations

from typing import Any

from nandoctor.diagnosis import LiveRule
from nandoctor.report import Confidence, Evidence, Finding, Severity

# The cure for each cause of a zero denominator, by what the checks see of it.
NORM_FIX = (
    "Divide by a norm whose epsilon is inside its square root: nandoctor.layers.SafeCosineSimilarity for a "
    "cosine, nandoctor.layers.SafeL2Normalization (or safe_l2_normalize(x) in your own code) for x / norm(x); "
    "both layers take their norms in float32 under a mixed policy."
)
MASKED_MEAN_FIX = (
    "Floor the count of unmasked steps at 1, sum(x * mask) / maximum(sum(mask), 1), or use "
    "nandoctor.layers.MaskedMeanPooling: a row whose steps are all masked then pools to zeros, not 0/0."
)
FLOAT16_FIX = (
    "This denominator is computed in float16, where squares beyond 256 and sums beyond 65504 overflow to "
    'inf and an epsilon below 3e-8 is 0: keep the layer in float32 with dtype="float32", and guard the '
    "denominator with an epsilon the dtype holds."
)
EMPTY_MASK_FIX = (
    "A row that is all padding empties every mask: a masked mean must floor its count at 1 "
    "(nandoctor.layers.MaskedMeanPooling replaces GlobalAveragePooling1D), and a masked softmax must fill "
    "the masked scores with a large finite negative, not -inf (keras.layers.Softmax()(scores, mask=mask) "
    "uses -1e9, or -3e4 in float16)."
)
GENERIC_FIX = (
    "Guard the denominator inside the computation (x / (norm + eps) with a norm whose epsilon is inside its "
    "square root), or use nandoctor.layers.SafeCosineSimilarity / safe_l2_normalize."
)

_ROOTS = ("Sqrt", "Rsqrt", "EuclideanNorm")
# Comparisons make masks; JAX's primitives beyond eq and ne keep their own names in a jaxpr.
_COMPARISONS = (
    "Equal",
    "NotEqual",
    "Greater",
    "GreaterEqual",
    "Less",
    "LessEqual",
    "LogicalAnd",
    "LogicalOr",
    "LogicalNot",
    "gt",
    "ge",
    "lt",
    "le",
    "and",
    "or",
    "not",
)
# Operations a denominator is composed through: its cause lies in what they combine.
_COMPOSING = (
    "Identity",
    "Cast",
    "Reshape",
    "ExpandDims",
    "Squeeze",
    "BroadcastTo",
    "Transpose",
    "StopGradient",
    # `mask[..., None]` and slices keep the values they index.
    "StridedSlice",
    "Slice",
    "Mul",
    "AddV2",
    "Add",
    "AddN",
    "Sub",
    "Maximum",
    "Minimum",
    "Sum",
    "Mean",
    "Prod",
    "Max",
    "Square",
    "SelectV2",
    "SelectN",
    "Select",
)
# Operations whose float16 result can overflow although their inputs are finite.
_GROWING = ("Square", "Exp", "Pow", "Mul", "Sum", "Prod", "MatMul", "BatchMatMulV2", "Einsum")


class UnguardedDivision(LiveRule):
    """## What it does
    Finds divisions in hand-written code whose denominator can be zero and is not guarded.

    ## Why is this bad?
    `x / norm(x)` and `sum(a * b) / (norm(a) * norm(b))` are finite on typical data and
    NaN (0/0) on the one input whose vector is zero: an all-zero embedding row (gensim
    leaves the rows of unknown words at zero), an all-padding sequence, a ReLU layer that
    died. One NaN in a forward pass reaches the loss and, through the gradients, every
    weight (field report C). A negative power, `x ** -1`, is a division too.

    ## Example
    ```python
    import keras
    import nandoctor

    table = keras.ops.convert_to_numpy(keras.random.normal((100, 16)))
    table[10:20] = 0.0  # words missing from the pretrained vectors
    norm = lambda t: keras.ops.sqrt(keras.ops.sum(t * t, axis=-1))
    query, candidate = keras.Input((16,)), keras.Input((1,), dtype="int32")
    vector = keras.layers.Flatten()(keras.layers.Embedding(100, 16, weights=[table])(candidate))
    cosine = keras.layers.Lambda(lambda p: keras.ops.sum(p[0] * p[1], -1) / (norm(p[0]) * norm(p[1])))
    model = keras.Model([query, candidate], cosine([query, vector]))
    nandoctor.check(model)  # ND201, confirmed: ids of zero rows make the output NaN
    ```

    ## Use instead
    ```python
    import keras
    import nandoctor

    table = keras.ops.convert_to_numpy(keras.random.normal((100, 16)))
    table[10:20] = 0.0
    query, candidate = keras.Input((16,)), keras.Input((1,), dtype="int32")
    vector = keras.layers.Flatten()(keras.layers.Embedding(100, 16, weights=[table])(candidate))
    model = keras.Model([query, candidate], nandoctor.layers.SafeCosineSimilarity()([query, vector]))
    ```

    The finding's fix names the cure for what the division was: a norm (`SafeCosineSimilarity`,
    `SafeL2Normalization`), a count of mask steps (a masked mean: `MaskedMeanPooling`, or the
    count floored at 1), a denominator computed in float16 (the layer in float32); a NaN the
    probe made with sequences that are all padding gets the cures for an empty mask (a masked
    mean, or a softmax masked with `-inf` instead of a large finite negative).

    ## Known problems
    A guard is recognised by its shape (a maximum, an added constant, a division by an
    exponential); a guard computed elsewhere and passed in is not, and the NaN probe then
    decides: the finding stays at medium confidence unless the probe makes it NaN.
    """

    code = "ND201"
    evidence = (
        "a live model: the graph checks trace it (a suspicion, medium confidence) and the NaN probe runs "
        "it (high confidence). The static scan reports the code it cannot see as ND901, at info."
    )
    name = "unguarded-division"
    severity = Severity.ERROR
    evidence_kinds = (Evidence.MEASURED, Evidence.CERTAIN, Evidence.ADVERSARIAL)
    # A graph check judges structure; the NaN probe's measurement raises it to high.
    confidence = Confidence.MEDIUM
    fix = GENERIC_FIX

    @classmethod
    def fix_for(cls, operation) -> str:
        """The cure for the division `operation` (a traced TensorFlow operation or JAX equation
        read alike) by what its denominator is: a count of mask steps, a norm, a value computed
        in float16, or else the generic guard."""
        fixes = {"masked mean": MASKED_MEAN_FIX, "norm": NORM_FIX, "float16": FLOAT16_FIX}
        return fixes.get(_division_cause(operation) or "", GENERIC_FIX)

    @classmethod
    def finding(
        cls,
        layer: str | None,
        message: str,
        *,
        fix: str | None = None,
        details: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Finding:
        """A probe that broke the model on sequences that are all padding has emptied every
        mask: that is the cause to cure, whatever the layer divides by."""
        if fix is None and str((details or {}).get("recipe", "")).startswith("all-padding"):
            fix = EMPTY_MASK_FIX
        return super().finding(layer, message, fix=fix, details=details, **kwargs)


def _division_cause(operation) -> str | None:
    """ "masked mean", "norm", "float16" or None, from the denominator's traced graph."""
    from nandoctor.live.graph_checks import _numpy_dtype

    inputs = list(operation.inputs)
    if not inputs:
        return None
    denominator = inputs[-1] if operation.type in ("RealDiv", "Div") else inputs[0]
    seen = _composed_from(denominator)
    if any(op.type in _COMPARISONS or (op.type == "Cast" and _is_count(op.inputs[0])) for op in seen if op.inputs):
        return "masked mean"  # a count of mask steps: 0 where every step is masked
    if any(op.type in _ROOTS for op in seen):
        return "norm"
    dtype = _numpy_dtype(denominator)
    if dtype is not None and dtype.name == "float16" and any(op.type in _GROWING for op in seen):
        return "float16"
    return None


def _composed_from(tensor, limit: int = 64) -> list:
    """The operations `tensor` is composed from, through arithmetic and reductions, nearest first."""
    found: list = []
    queue, visited = [tensor], set()
    while queue and len(found) < limit:
        op = queue.pop(0).op
        if id(op) in visited:
            continue
        visited.add(id(op))
        found.append(op)
        if op.type in _COMPOSING:
            queue.extend(op.inputs)
    return found


def _is_count(tensor) -> bool:
    """A boolean or integer tensor: cast to a float and summed, it counts (mask steps, tokens)."""
    from nandoctor.live.graph_checks import _numpy_dtype

    dtype = _numpy_dtype(tensor)
    return dtype is not None and dtype.kind in "biu"
