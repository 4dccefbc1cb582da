from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from nandoctor.live.live_check import LiveCheck
from nandoctor.live.singular_gradient import SingularGradient
from nandoctor.live.unguarded_division import UnguardedDivision
from nandoctor.live.unguarded_log import UnguardedLog
from nandoctor.report import Confidence, Finding

# A gradient this large on a single weight is the signature of a guard that turned 0/0 into
# 1/epsilon: a clamp at 1e-7 gives 1e7 against a unit vector. A guard inside the roots, as
# SafeCosineSimilarity's (epsilon 1e-6), stays below 1e6 per unit of activation.
ABSURD_GRADIENT = 1e7


class NanProbe(LiveCheck):
    """## What it does
    Runs the live model on inputs built to break it: token ids that hit all-zero embedding
    rows (alone, and against real ones), all-padding sequences, zeros, magnitudes of 1e12,
    identical pairs for two-tower models. It computes the outputs, the loss and the gradients (without applying them),
    and when one is non-finite or absurdly large, replays the batch layer by layer to name
    the culprit.

    ## Why is this bad?
    A division or a square root that is safe on typical data returns NaN, or gradients of
    order 1/epsilon, on the one input that makes its argument 0. Training meets that input
    sooner or later (field report C: a text whose words are all missing from the
    pretrained table). The probe meets it first, and confirms the graph check's suspicion.
    """

    name = "nan-probe"
    raises = (UnguardedDivision, SingularGradient)
    # What it confirms: any numerics suspicion of the graph checks on the culprit layer.
    _numerics = (UnguardedDivision, SingularGradient, UnguardedLog)

    def run(self, model, view) -> Iterator[Finding]:
        if any(weight.stats().nonfinite for weight in view.weights()):
            return  # weights already NaN break every input: that is ND102's finding, not a recipe's
        for recipe, inputs in _recipes(model, view):
            # Gradients grow with the inputs: at 1e12 only non-finite values say something.
            outcome = _evaluate(model, inputs, judge_size="magnitude" not in recipe)
            if outcome is None:
                continue
            kind, value = outcome
            from nandoctor.live.replay import localize

            where = localize(model, (inputs, _targets(model, inputs)))
            layer = where.forward_culprit or where.backward_culprit
            rule = UnguardedDivision if kind == "non-finite output" else SingularGradient
            message = (f"on {recipe}, the model's {kind} ({value}); replaying it layer by layer: "
                       f"{where.describe()}")
            yield rule.finding(layer, message, confidence=Confidence.HIGH,
                               details={"recipe": recipe, "kind": kind, "localization": where.to_dict()})
            return

    def confirms(self, measured: Finding, suspicion: Finding) -> bool:
        """The probe sees that a layer breaks, not which of its operations: it confirms
        whichever numerics suspicion the graph checks raised on that layer."""
        numerics = {rule.code for rule in self._numerics}
        if measured.layer is None:
            # The replay stayed finite (an absurd gradient, not a NaN): no layer is named, and
            # the measurement confirms the graph checks' suspicion of the same kind.
            return measured.code == suspicion.code
        return measured.layer == suspicion.layer and measured.code in numerics and suspicion.code in numerics


def _recipes(model, view):
    """(description, inputs) pairs, most likely to break first."""
    rng = np.random.default_rng(0)
    specs = [(tensor.shape, str(tensor.dtype), _input_layer_name(tensor)) for tensor in model.inputs]
    # Each id input is drawn from the table it feeds: a words input and an entities input
    # have vocabularies of their own, and an id past a table's end is an error, not a probe.
    tables = [_first_embedding(view, name) for _, _, name in specs]
    vocabularies = [_vocabulary(table) for table in tables]
    zero_ids = [_zero_row_ids(table) for table in tables]

    def batch(fill):
        return [fill(index, (2, *[d or 8 for d in shape[1:]]), dtype) for index, (shape, dtype, _) in enumerate(specs)]

    def ids(index, shape, dtype):
        return rng.integers(1, max(vocabularies[index], 2), size=shape).astype(dtype)

    def zero_or_real(index, shape, dtype):
        return rng.choice(zero_ids[index], size=shape).astype(dtype) if zero_ids[index] is not None else ids(index, shape, dtype)

    def live(index, shape, dtype):
        rows = np.setdiff1d(np.arange(1, vocabularies[index]), zero_ids[index] if zero_ids[index] is not None else [])
        return rng.choice(rows, size=shape).astype(dtype) if len(rows) else ids(index, shape, dtype)

    if any(z is not None for z in zero_ids):
        first = min(i for i, z in enumerate(zero_ids) if z is not None)
        shown = zero_ids[first][:3].tolist()
        yield (f"token ids of all-zero embedding rows ({shown}...)",
               _single(batch(lambda i, s, d: zero_or_real(i, s, d) if "int" in d else rng.normal(size=s).astype(d))))
        if len(specs) > 1:
            # One zero row against real vectors: where a clamped division's gradient is 1/eps.
            yield (f"a zero embedding row in input '{specs[first][2]}' against real ones in the others",
                   batch(lambda i, s, d: (zero_or_real(i, s, d) if i == first else live(i, s, d)) if "int" in d
                         else rng.normal(size=s).astype(d)))
    if any("int" in dtype for _, dtype, _ in specs):
        yield ("all-padding sequences (every id 0)",
               _single(batch(lambda i, s, d: np.zeros(s, d) if "int" in d else rng.normal(size=s).astype(d))))
    floats = [i for i, (_, dtype, _) in enumerate(specs) if "float" in dtype]
    if floats:
        yield ("all-zero inputs", _single(batch(lambda i, s, d: np.zeros(s, d) if "float" in d else ids(i, s, d))))
        # Large but representable (raw counts, amounts): 1e30 would overflow any norm's
        # squares, guarded or not, which says nothing about its guards.
        yield ("inputs of magnitude 1e12", _single(batch(lambda i, s, d: np.full(s, 1e12, d) if "float" in d else ids(i, s, d))))
    if len(specs) == 2 and specs[0][:2] == specs[1][:2]:
        same = batch(lambda i, s, d: ids(0, s, d) if "int" in d else rng.normal(size=s).astype(d))
        yield ("identical pairs on both towers", [same[0], same[0]])


def _single(inputs: list):
    return inputs if len(inputs) > 1 else inputs[0]


def _input_layer_name(tensor) -> str:
    # A Keras 3 input tensor is named keras_tensor_N; the graph knows its InputLayer's name.
    history = getattr(tensor, "_keras_history", None)
    return getattr(getattr(history, "operation", None), "name", None) or tensor.name


def _first_embedding(view, input_name: str):
    """The embedding table nearest downstream of the named model input; failing that (an
    input the view cannot place), the model's first embedding."""
    found = next((layer for layer in view.downstream(input_name) if layer.is_embedding), None)
    return found or next((layer for layer in view.layers if layer.is_embedding), None)


def _vocabulary(table) -> int:
    input_dim = table.config.get("input_dim") if table is not None else None
    return int(input_dim) if isinstance(input_dim, int) else 50


def _zero_row_ids(table) -> np.ndarray | None:
    matrix = table.embedding_matrix() if table is not None else None
    if matrix is None or len(matrix.shape) != 2:
        return None
    zero = matrix.stats().zero_rows
    zero = zero[zero != 0] if zero is not None else None
    return zero if zero is not None and len(zero) else None


def _targets(model, inputs):
    outputs = model(inputs, training=False)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    targets = [np.zeros(np.shape(o), "float32") for o in outputs]
    return targets if len(targets) > 1 else targets[0]


def _evaluate(model, inputs, judge_size: bool = True) -> tuple[str, str] | None:
    """What breaks: a non-finite output, loss or gradient, or an absurd gradient."""
    import tensorflow as tf

    weights = model.trainable_weights
    with tf.GradientTape() as tape:
        outputs = model(inputs, training=False)
        flat = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        loss = tf.add_n([tf.reduce_sum(tf.cast(o, "float32")) for o in flat])
    values = [np.asarray(o, dtype=np.float64) for o in flat]
    if any(not np.isfinite(v).all() for v in values):
        return "non-finite output", "NaN or Inf in the outputs"
    # An embedding's gradient is sparse (IndexedSlices): densify it to read it.
    gradients = [tf.convert_to_tensor(g) for g in tape.gradient(loss, weights) if g is not None]
    largest = max((float(np.nanmax(np.abs(np.asarray(g)))) if np.asarray(g).size else 0.0 for g in gradients), default=0.0)
    if any(not np.isfinite(np.asarray(g)).all() for g in gradients):
        return "non-finite gradient", "NaN or Inf in the gradients of its weights"
    if judge_size and largest > ABSURD_GRADIENT:
        return "absurd gradient", f"a weight gradient of {largest:.3g}"
    return None
