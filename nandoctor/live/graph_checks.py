"""Graph checks: the operations of a live model's forward pass, judged for guards.

The model is traced with `tf.function` (on JAX, `jax.make_jaxpr`); each division, square root and log is traced back
to its layer by its name scope, and its input's range is read back through the graph: a
positive constant added to a non-negative value (a square, abs, relu, sigmoid, softmax, exp, or
their sums), a maximum with one or a clip whose floor is positive, a softmax summed over its
row, a constant minus a value clipped below it, make it safe. Constants are judged in the
dtype they are computed in: `1 - 1e-7` is 1.0 in float16, `1e-8` is 0. Only operations made by
Lambdas, custom layers and `keras.ops` nodes are judged: Keras's own layers guard theirs,
and hand-written code is where the unguarded ones live.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from typing import TYPE_CHECKING

import numpy as np

from nandoctor.analysis.keras_facts import is_known_class
from nandoctor.live.live_check import LiveCheck, model_backend
from nandoctor.live.singular_gradient import SingularGradient
from nandoctor.live.unguarded_division import UnguardedDivision
from nandoctor.live.unguarded_log import UnguardedLog
from nandoctor.report import Evidence, Finding, Severity

if TYPE_CHECKING:
    from nandoctor.diagnosis import LiveRule

_DIVISIONS = ("RealDiv", "Div", "Reciprocal", "Inv")
_ROOTS = ("Sqrt", "Rsqrt")
_LOGS = ("Log",)
_POWERS = ("Pow",)
# Infinite derivative at the ends of their domain: acos/asin at +-1, atan2 at (0, 0).
_ANGLES = ("Acos", "Asin", "Atan2")
# Every operation judged for a guard, in the forward pass and in the loss.
JUDGED_OPERATIONS = _DIVISIONS + _ROOTS + _LOGS + _POWERS + _ANGLES
_CLIPS = ("Minimum", "Maximum", "ClipByValue")
_POSITIVE = ("Exp", "Softplus", "Sigmoid")
_PASS_THROUGH = ("Identity", "Cast", "Reshape", "ExpandDims", "Squeeze", "StopGradient", "BroadcastTo", "Transpose")
_NON_NEGATIVE = (
    "Square",
    "SquaredDifference",
    "Abs",
    "Relu",
    "Relu6",
    "Sqrt",
    "Rsqrt",
    "Exp",
    "Softplus",
    "Sigmoid",
    "Softmax",
)
# A tensor's dimensions, read at run time: `sqrt(cast(shape(k)[-1]))` scales attention scores.
_SHAPES = ("Shape", "Size", "Rank")
_SHAPE_ARITHMETIC = ("StridedSlice", "GatherV2", "Prod", "Mul", "Pack", "Cast", "Identity", "Reshape", "Squeeze")


def _constant(tensor) -> np.ndarray | None:
    """A constant's value in the dtype the graph computes it in: `1 - 1e-7` is 1.0 in float16,
    and a constant cast to the layer's dtype (JAX's clip casts its bounds) is read through the
    cast."""
    op = tensor.op
    if op.type in ("Cast", "Identity", "BroadcastTo") and op.inputs:
        value = _constant(op.inputs[0])
        return _in_dtype(value, tensor) if value is not None else None
    if op.type != "Const":
        return None
    if getattr(op, "constant_value", None) is not None:  # read from a jaxpr
        return op.constant_value
    from tensorflow.python.framework import tensor_util

    return tensor_util.MakeNdarray(op.get_attr("value"))


def _in_dtype(value: np.ndarray, tensor) -> np.ndarray:
    dtype = _numpy_dtype(tensor)
    return value.astype(dtype) if dtype is not None else value


def _numpy_dtype(tensor):
    """The tensor's element type as numpy knows it (bfloat16 by ml_dtypes), or None if unknown."""
    dtype = getattr(tensor, "dtype", None)
    dtype = getattr(dtype, "as_numpy_dtype", dtype)  # TensorFlow's DType, or a jaxpr's numpy dtype
    try:
        return np.dtype(dtype) if dtype is not None else None
    except TypeError:
        return None


def _positive_constant(tensor) -> bool:
    value = _constant(tensor)
    return value is not None and value.size > 0 and bool(np.all(value > 0))


def _non_negative_constant(tensor) -> bool:
    value = _constant(tensor)
    return value is not None and value.size > 0 and bool(np.all(value >= 0))


def is_positive(tensor, depth: int = 0) -> bool:
    """Provably > 0: a positive constant, exp or softplus, a max with a positive constant, a
    clip whose floor is positive, a non-negative value plus a positive one, a constant minus a
    value held below it (Keras's `1 - clip(p, eps, 1 - eps)`), a softmax summed over a row."""
    op = tensor.op
    if depth > 12:
        return False
    if _constant(tensor) is not None:  # in its own dtype: 1e-8 cast to float16 is 0
        return _positive_constant(tensor)
    if op.type in _POSITIVE or _shape_derived(tensor):
        return True
    if op.type in _PASS_THROUGH + _ROOTS + ("Square",):  # a root or square of a positive value
        return bool(op.inputs) and is_positive(op.inputs[0], depth + 1)
    if op.type == "Maximum":
        return any(is_positive(i, depth + 1) for i in op.inputs)
    if op.type == "Minimum":
        return all(is_positive(i, depth + 1) for i in op.inputs)
    if op.type == "ClipByValue":  # clip(p, epsilon, 1 - epsilon), as Keras's cross-entropies take it
        return (is_positive(op.inputs[1], depth + 1) or is_positive(op.inputs[0], depth + 1)) and is_positive(
            op.inputs[2], depth + 1
        )
    if op.type in ("AddV2", "Add", "AddN"):
        return any(is_positive(i, depth + 1) for i in op.inputs) and all(
            is_non_negative(i, depth + 1) for i in op.inputs
        )
    if op.type == "Sub":
        return _held_below(op.inputs[0], op.inputs[1], depth)
    if op.type in ("RealDiv", "Div"):  # Keras's kl_divergence: log(clip(y_true) / clip(y_pred))
        # A softmax written out, exp(x) / sum(exp(x)), underflows to 0 for a row's small entries.
        return not _is_softmax(tensor) and all(is_positive(i, depth + 1) for i in op.inputs)
    if op.type in ("Sum", "Mean", "Max") and _is_softmax(op.inputs[0]) and _reduces_last_axis(op):
        return True  # each row of a softmax sums to 1, and its largest entry is at least 1/n
    if op.type in ("Mul", "Sum", "Mean", "Prod", "Max"):
        return all(is_positive(i, depth + 1) or (op.type != "Mul" and i.op.type == "Const") for i in op.inputs)
    return False


def _select_cases(op) -> tuple:
    """(predicate, the value where it is false, the value where it is true) of JAX's
    `select_n(p, when_false, when_true)` or TensorFlow's `SelectV2(p, when_true, when_false)`."""
    if op.type == "SelectN" and len(op.inputs) == 3:
        return op.inputs[0], op.inputs[1], op.inputs[2]
    if len(op.inputs) == 3:
        return op.inputs[0], op.inputs[2], op.inputs[1]
    return None, None, None


def _live_cases(op) -> list:
    """The values a select can give on finite data: JAX's logaddexp (its softplus) keeps a branch
    for a NaN argument, chosen by `x != x`, which finite data never takes."""
    predicate, when_false, when_true = _select_cases(op)
    if predicate is None:
        return list(op.inputs[1:])
    tested = predicate.op.inputs
    if predicate.op.type == "NotEqual" and len(tested) == 2 and tested[0] is tested[1]:
        return [when_false]
    return [when_false, when_true]


def _zero_replaced(tensor) -> bool:
    """`where(d == 0, 1, d)`: the denominator of Keras's `divide_no_nan` on JAX, never 0."""
    op = _beneath_pass_through(tensor).op
    if op.type not in ("SelectN", "SelectV2", "Select"):
        return False
    predicate, when_false, when_true = _select_cases(op)
    if predicate is None or predicate.op.type != "Equal":
        return False
    tested, replacement = predicate.op.inputs, _constant(when_true)
    zero = next((i for i in tested if (value := _constant(i)) is not None and not np.any(value)), None)
    return (
        zero is not None
        and replacement is not None
        and bool(np.all(replacement != 0))
        and any(i is when_false for i in tested if i is not zero)
    )


def _held_below(minuend, subtrahend, depth: int) -> bool:
    """`c - x` > 0: x is clipped (or capped by a minimum) strictly below the constant c, in the
    dtype the subtraction runs in: in float16, `1 - clip(p, 1e-7, 1 - 1e-7)` can be 0."""
    constant = _constant(minuend)
    ceiling = _upper_bound(subtrahend, depth + 1)
    if constant is None or ceiling is None or constant.size == 0:
        return False
    dtype = _numpy_dtype(minuend) or constant.dtype
    return bool(np.all(constant.astype(dtype) - np.asarray(ceiling).astype(dtype) > 0))


def _upper_bound(tensor, depth: int = 0) -> np.ndarray | None:
    """The largest value a tensor can take, in its own dtype, where a clip or minimum caps it."""
    op = tensor.op
    if depth > 12:
        return None
    if op.type == "ClipByValue":
        ceiling = _constant(op.inputs[2])
    elif op.type == "Minimum":
        ceilings = [bound for i in op.inputs if (bound := _upper_bound(i, depth + 1)) is not None]
        ceiling = min(ceilings, key=lambda bound: float(np.max(bound))) if ceilings else None
    elif op.type == "Maximum":  # TensorFlow's clip_by_value: maximum(minimum(x, hi), lo)
        bounds = [_upper_bound(i, depth + 1) for i in op.inputs]
        known = [bound for bound in bounds if bound is not None]
        ceiling = max(known, key=lambda b: float(np.max(b))) if len(known) == len(bounds) else None
    elif op.type == "Const":
        ceiling = _constant(tensor)
    elif op.type in _PASS_THROUGH and op.inputs:
        ceiling = _upper_bound(op.inputs[0], depth + 1)
    else:
        return None
    return _in_dtype(np.asarray(np.max(ceiling)), tensor) if ceiling is not None and np.size(ceiling) else None


def _reduces_last_axis(op) -> bool:
    """A reduction over the last axis (the one Keras's softmax normalises by default)."""
    rank = _rank(op.inputs[0])
    axes = _constant(op.inputs[1]) if len(op.inputs) > 1 else None
    if rank is None or axes is None:
        return False
    return (rank - 1) in {int(axis) % rank for axis in np.ravel(axes)} if rank else False


def _rank(tensor) -> int | None:
    shape = getattr(tensor, "shape", None)
    rank = getattr(shape, "rank", None) if shape is not None else None
    if rank is None and isinstance(shape, tuple):
        rank = len(shape)
    return rank


def _shape_derived(tensor, depth: int = 0) -> bool:
    """A value computed from tensor dimensions only (a key width, a sequence length): at
    least 1 for any tensor that has elements, so never a zero denominator."""
    op = tensor.op
    if depth > 8 or op.type not in _SHAPES + _SHAPE_ARITHMETIC:
        return False
    if op.type in _SHAPES:
        return True
    operands = (
        [i for i in op.inputs if i.op.type != "Const"]
        if op.type in ("StridedSlice", "GatherV2")
        else op.inputs[:1]
        if op.type in ("Cast", "Identity", "Reshape", "Squeeze")
        else op.inputs
    )
    operands = operands[:1] if op.type in ("StridedSlice", "GatherV2") else operands
    return bool(operands) and all(_shape_derived(i, depth + 1) or _positive_constant(i) for i in operands)


def is_non_negative(tensor, depth: int = 0) -> bool:
    """Provably >= 0: squares, absolute values, relu, exp, sigmoid, softmax, their reductions,
    products and quotients, and `x * x`."""
    op = tensor.op
    if depth > 12:
        return False
    if op.type in _NON_NEGATIVE or _non_negative_constant(tensor) or is_positive(tensor, depth):
        return True
    if op.type in (*_PASS_THROUGH, "Sum", "Mean", "Max", "Min", "Prod"):
        return bool(op.inputs) and is_non_negative(op.inputs[0], depth + 1)
    if op.type in ("Mul", "RealDiv", "Div"):  # a quotient of non-negatives: a softmax as JAX writes it out
        return all(is_non_negative(i, depth + 1) for i in op.inputs) or (op.inputs[0] is op.inputs[1])
    if op.type in ("AddV2", "Add", "AddN", "Minimum"):
        return all(is_non_negative(i, depth + 1) for i in op.inputs)
    if op.type == "Maximum":  # relu as JAX writes it: max(x, 0)
        return any(is_non_negative(i, depth + 1) for i in op.inputs)
    if op.type == "ClipByValue":
        return is_non_negative(op.inputs[1], depth + 1)
    if op.type == "Log1p":  # log(1 + x) >= 0 for x >= 0: jax.nn.softplus is max(x, 0) + log1p(exp(-|x|))
        return is_non_negative(op.inputs[0], depth + 1)
    if op.type in ("SelectN", "SelectV2", "Select"):
        return all(is_non_negative(case, depth + 1) for case in _live_cases(op))
    if op.type == "Pow":  # an even integer power
        exponent = _constant(op.inputs[1])
        return exponent is not None and bool(np.all((exponent % 2 == 0) & (exponent > 0)))
    return False


def _clamp_outside_root(tensor) -> bool:
    """`maximum(sqrt(...), eps)` (or of a product of roots): the value is guarded, but the
    gradient through it is of order 1/eps."""
    op = tensor.op
    if op.type != "Maximum":
        return False
    other = [i for i in op.inputs if not _positive_constant(i)]
    return bool(other) and (
        other[0].op.type in _ROOTS
        or (other[0].op.type == "Mul" and any(i.op.type in _ROOTS for i in other[0].op.inputs))
    )


class GraphChecks(LiveCheck):
    """## What it does
    Traces the live model's forward pass and finds divisions, square roots and logs in
    hand-written code (Lambdas, custom layers, `keras.ops` nodes) whose input can be zero.

    ## Why is this bad?
    `x / norm(x)` is 0/0 = NaN for a zero vector (ND201); `sqrt(s)` has an infinite
    derivative at 0, and a clamp put outside the root, `maximum(sqrt(s), eps)`, guards the
    value but gives gradients of order 1/eps (ND202); `log(p)` of a probability that
    underflows to 0 is -inf (ND203). Each returns NaN only on some inputs, so it trains for a
    while and then fails without a word (field report C).
    """

    name = "graph-checks"
    raises = (UnguardedDivision, SingularGradient, UnguardedLog)
    backends = ("tensorflow", "jax")
    needs = "it reads the model's TensorFlow graph or jaxpr"
    measures = False  # a structural judgement: a suspicion for the NaN probe to confirm

    def run(self, model, view) -> Iterator[Finding]:
        forward = _forward_operations(model, view)
        if forward is None:
            return
        judged = _hand_written_layers(view)
        built_in = _built_in_layer_names(model) - judged
        seen: set[tuple[str, str]] = set()
        for op in forward:
            layer = _layer_of(op.name, judged, built_in)
            if layer is None or op.type not in JUDGED_OPERATIONS:
                continue
            finding = _judge(op, layer)
            if finding is not None and (finding.code, layer) not in seen:
                seen.add((finding.code, layer))
                yield finding


def _forward_operations(model, view) -> list | None:
    """The forward pass's operations: the TensorFlow graph, or on JAX the jaxpr read alike; None
    on a backend with no graph to read (PyTorch), where tracing would import TensorFlow."""
    backend = model_backend(model)
    if backend == "jax":
        from nandoctor.live.jax_graph import forward_operations

        return forward_operations(model, view)
    if backend != "tensorflow":
        return None
    from nandoctor.live.traced_graph import traced_graph

    graph = traced_graph(model, view)
    return graph.forward if graph is not None else None


def _judge(op, layer: str) -> Finding | None:
    verdict = _verdict(op, f"'{op.name}' in layer '{layer}'")
    if verdict is None:
        return None
    rule, message = verdict
    # The traced code proves the operation is unguarded; whether a zero ever reaches it, only a
    # run on the model's inputs can say (the NaN probe): a hazard, not yet a NaN.
    return rule.finding(
        layer,
        message,
        details={"operation": op.name},
        evidence=Evidence.CERTAIN,
        severity=Severity.WARNING,
        fix=rule.fix_for(op),
    )


def _verdict(op, where: str) -> tuple[type[LiveRule], str] | None:
    """(the live rule an unguarded operation breaks, why), or None when it is guarded."""
    argument = op.inputs[-1] if op.type in ("RealDiv", "Div") else op.inputs[0]
    if op.type in _DIVISIONS:
        if _clamp_outside_root(argument):
            return SingularGradient, (
                f"the division {where} is guarded by a maximum outside its square root: "
                "the value is safe, the gradient of order 1/epsilon"
            )
        if not is_positive(argument) and not _zero_replaced(argument):
            return UnguardedDivision, (
                f"the denominator of the division {where} ({argument.op.type}) is not guarded against 0: 0/0 gives NaN"
            )
    elif op.type in _ROOTS:
        if not is_positive(argument):
            return SingularGradient, (
                f"the square root {where} takes {argument.op.type}, which can be 0, where its derivative is infinite"
            )
    elif op.type in _POWERS:
        exponent = _constant(op.inputs[1])
        if exponent is not None and not is_positive(op.inputs[0]):
            if np.any(exponent < 0):
                return (
                    UnguardedDivision,
                    f"the power {where} has a negative exponent, a division by a base that can be 0",
                )
            if np.any((exponent > 0) & (exponent < 1)):
                return SingularGradient, (
                    f"the power {where} has a fractional exponent below 1, whose derivative is infinite at a base of 0"
                )
    elif op.type in _ANGLES:
        if op.type == "Atan2" or op.inputs[0].op.type not in _CLIPS:
            return SingularGradient, (
                f"the {op.type.lower()} {where} has an infinite derivative at the ends of its "
                "domain (acos of a cosine of 1: identical vectors)"
            )
    elif op.type in _LOGS and not is_positive(argument):
        softmax = (
            " (a softmax, which underflows to 0: use log_softmax or a loss with from_logits=True)"
            if _is_softmax(argument)
            else ""
        )
        return UnguardedLog, f"the log {where} takes {argument.op.type}, which can be 0{softmax}{_rounded_to(argument)}"
    return None


def _rounded_to(tensor) -> str:
    """Why `c - clip(x, lo, hi)` can be 0 although hi < c was written: hi rounds to c in the
    dtype the subtraction runs in (`1 - 1e-7` is 1.0 in float16 and bfloat16)."""
    if tensor.op.type != "Sub":
        return ""
    ceiling, dtype = _upper_bound(tensor.op.inputs[1]), _numpy_dtype(tensor)
    if ceiling is None or dtype is None:
        return ""
    return (
        f" (its clip's ceiling rounds to {float(ceiling):g} in {dtype.name}: compute the loss in float32, "
        "as Keras's compiled losses do)"
    )


def _is_softmax(tensor) -> bool:
    """TensorFlow's Softmax, or the exp(x) / sum(exp(x)) a jaxpr writes it as, seen through
    casts (a mixed-precision softmax cast to float32 by the loss, or summed in float32 by JAX)."""
    tensor = _beneath_pass_through(tensor)
    op = tensor.op
    if op.type == "Softmax":
        return True
    if op.type not in ("RealDiv", "Div") or op.inputs[0].op.type != "Exp":
        return False
    denominator = _beneath_pass_through(op.inputs[1])
    return denominator.op.type == "Sum" and _beneath_pass_through(denominator.op.inputs[0]) is op.inputs[0]


def _beneath_pass_through(tensor):
    while tensor.op.type in _PASS_THROUGH and tensor.op.inputs:
        tensor = tensor.op.inputs[0]
    return tensor


def _built_in_layer_names(model) -> set[str]:
    """Keras's own layers anywhere in the model, those inside custom layers included: the
    `rsqrt(variance + epsilon)` of a LayerNormalization held by a custom block is Keras's
    code, guarded, and not the block's."""
    from nandoctor.live.model_layers import every_layer

    return {layer.name for layer in every_layer(model) if is_known_class(type(layer).__name__, type(layer).__module__)}


def _hand_written_layers(view) -> set[str]:
    return {
        layer.name.rsplit("/", 1)[-1]
        for layer in view.layers
        if layer.class_name == "Lambda"
        or not is_known_class(layer.class_name, layer.module)
        or (layer.module or "").startswith("keras.src.ops")
    }


def _layer_of(op_name: str, judged: set[str], built_in: Collection[str] = frozenset()) -> str | None:
    """The hand-written layer whose code made the operation: the innermost scope that names
    one, unless a Keras layer's scope is nearer (its own guarded arithmetic)."""
    for part in reversed(op_name.split("/")[:-1]):
        base = re.sub(r"_\d+$", "", part)
        if part in judged:
            return part
        if base in judged:
            return base
        if part in built_in or base in built_in:
            return None
    return None
