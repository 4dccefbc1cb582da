from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from nandoctor.live.gradients import outputs_and_gradients
from nandoctor.live.headroom import computes_in_reduced_precision, computing_in_float32, headroom_finding
from nandoctor.live.live_check import LiveCheck
from nandoctor.live.model_inputs import first_embedding, probe_inputs, to_host, typical_values
from nandoctor.live.singular_gradient import SingularGradient
from nandoctor.live.unguarded_division import UnguardedDivision
from nandoctor.live.unguarded_log import UnguardedLog
from nandoctor.report import Confidence, Evidence, Finding
from nandoctor.rules.epsilon_below_resolution import EpsilonBelowResolution
from nandoctor.rules.overflow_headroom import OverflowHeadroom
from nandoctor.rules.zero_embedding_rows import ZeroEmbeddingRows

# A gradient this large on a single weight is the signature of a guard that turned 0/0 into
# 1/epsilon: a clamp at 1e-7 gives 1e7 against a unit vector. Correct models reach 1e6 on the
# probe's realistic recipes (a SafeCosineSimilarity ranker fed its zero rows), so the line
# stays above them; bench/judgement.py publishes the measured distribution.
ABSURD_GRADIENT = 1e7


class NanProbe(LiveCheck):
    """## What it does
    Runs the live model on inputs built to break it: first inputs it really meets (token ids
    that hit all-zero embedding rows, alone and against real ones; all-padding sequences, as
    empty texts give; identical pairs for two-tower models), then inputs outside any realistic
    range (all-zero features, magnitudes of 1e12), whose breakage is `adversarial` evidence
    and said at `info`. It computes the outputs, the loss and the gradients (without applying them),
    and when one is non-finite or absurdly large, replays the batch layer by layer to name
    the culprit. Under a float16 or bfloat16 policy it runs in that policy: it first measures each
    layer's headroom on typical inputs (`nandoctor.live.headroom`), and a breakage that
    the same inputs do not give with every layer computing in float32 is the dtype's range, not
    the layer's code: said as float16 overflow (ND805) at the layer, or, on inputs outside any
    realistic range (1e12 is beyond float16's 65504 by itself), as a note.

    ## Why is this bad?
    A division or a square root that is safe on typical data returns NaN, or gradients of
    order 1/epsilon, on the one input that makes its argument 0. Training meets that input
    sooner or later (field report C: a text whose words are all missing from the
    pretrained table). The probe meets it first, and confirms the graph check's suspicion.
    """

    name = "nan-probe"
    raises = (UnguardedDivision, SingularGradient, OverflowHeadroom)
    backends = ("tensorflow", "jax", "torch")
    needs = "it takes gradients with the backend's own differentiation (GradientTape, jax.grad, autograd)"
    # What it confirms: any numerics suspicion of the graph checks on the culprit layer.
    _numerics = (UnguardedDivision, SingularGradient, UnguardedLog)
    # What a breakage only the reduced dtype gives confirms on its layer: its range, its epsilon.
    _precision = (OverflowHeadroom, EpsilonBelowResolution)

    def run(self, model, view) -> Iterator[Finding]:
        if any(weight.stats().nonfinite for weight in view.weights()):
            return  # weights already NaN break every input: that is ND102's finding, not a recipe's
        if computes_in_reduced_precision(model):
            overflow = headroom_finding(model, realistic_batch(model, view), self.notes)
            if overflow is not None:
                yield overflow
        # Zero rows reaching a singular operation whose gradient this backend kept finite: the
        # weaker evidence, said after the recipes that break the model outright.
        singular = broken = None
        for recipe, inputs, evidence, zero_rows_of in _recipes(model, view):
            # Gradients grow with the inputs: at 1e12 only non-finite values say something.
            outcome = _evaluate(model, inputs, judge_size="magnitude" not in recipe)
            if outcome is None:
                if zero_rows_of and singular is None:
                    singular = _singular_point_reached(model, view, inputs, recipe, zero_rows_of)
                continue
            kind, value = outcome
            from nandoctor.live.replay import localize

            where = localize(model, (inputs, _targets(model, inputs)))
            layer = where.forward_culprit or where.backward_culprit
            if _only_in_reduced_precision(model, inputs, "magnitude" not in recipe, layer):
                dtype = _compute_dtype(model, layer)
                if evidence is Evidence.ADVERSARIAL:
                    # Every float16 model overflows on inputs float16 cannot hold: no fault of the model's.
                    self.notes.append(
                        f"{self.name}: on {recipe}, the model's {kind} comes from its {dtype} policy "
                        + (f"at layer '{layer}' " if layer else "")
                        + "(in float32 the same inputs leave it finite): inputs outside any "
                        "realistic range, not judged"
                    )
                    continue
                yield _precision_finding(recipe, kind, value, layer, dtype, where, zero_rows_of)
                return
            rule = UnguardedDivision if kind == "non-finite output" else SingularGradient
            message = f"on {recipe}, the model's {kind} ({value}); replaying it layer by layer: {where.describe()}"
            broken = rule.finding(
                layer,
                message,
                confidence=Confidence.HIGH,
                evidence=evidence,
                measured=f"{kind} on {recipe}",
                details={"recipe": recipe, "kind": kind, "localization": where.to_dict(), "zero_rows_of": zero_rows_of},
            )
            yield broken
            break
        # Said beside a breakage elsewhere (an empty text's mean), not over one that proves the same layer.
        if singular is not None and (broken is None or broken.layer not in (None, singular.layer)):
            yield singular

    def confirms(self, measured: Finding, suspicion: Finding) -> bool:
        """The probe sees that a layer breaks, not which of its operations: it confirms
        whichever numerics suspicion the graph checks raised on that layer."""
        numerics = {rule.code for rule in self._numerics}
        if measured.code == OverflowHeadroom.code:
            # The dtype's range broke it: its zero rows only met a layer float16 cannot compute.
            precision = {rule.code for rule in self._precision}
            return measured.layer is not None and measured.layer == suspicion.layer and suspicion.code in precision
        if suspicion.code == ZeroEmbeddingRows.code:  # the zero rows it fed are what broke it
            return suspicion.layer in measured.details.get("zero_rows_of", ())
        if measured.layer is None:
            # The replay stayed finite (an absurd gradient, not a NaN): no layer is named, and
            # the measurement confirms the graph checks' suspicion of the same kind.
            return measured.code == suspicion.code
        return measured.layer == suspicion.layer and measured.code in numerics and suspicion.code in numerics

    def absorbs(self, measured: Finding, suspicion: Finding) -> bool:
        """A NaN is said with the numerics or precision suspicion it proves; zero rows it fed are
        raised beside it."""
        return suspicion.code in {rule.code for rule in (*self._numerics, *self._precision)}


def _only_in_reduced_precision(model, inputs, judge_size: bool, layer: str | None) -> bool:
    """Whether the model computes in float16 or bfloat16 and the breakage is that dtype's: with
    every layer computing in float32 (same weights) the same inputs break nothing, or break
    elsewhere while the culprit `layer`'s outputs stay finite (1e12 overflows a float16 Dense,
    and only the exponential after it in float32)."""
    if not computes_in_reduced_precision(model):
        return False
    from nandoctor.live.replay import localize

    with computing_in_float32(model):
        if _evaluate(model, inputs, judge_size) is None:
            return True
        if layer is None:
            return False
        where = localize(model, (inputs, _targets(model, inputs)))
        return where.note is None and layer not in (
            where.forward_culprit,
            where.backward_culprit,
            *where.forward_propagators,
        )


def _compute_dtype(model, layer: str | None) -> str:
    """The reduced dtype the named layer computes in; where no layer is named, the model's."""
    from nandoctor.live.headroom import reduced_compute_dtype

    try:
        found = reduced_compute_dtype(model.get_layer(layer)) if layer else None
    except ValueError:
        found = None
    return found or reduced_compute_dtype(model) or "float16 or bfloat16"


def _precision_finding(
    recipe: str, kind: str, value: str, layer: str | None, dtype: str, where, zero_rows_of
) -> Finding:
    at = f"layer '{layer}'" if layer else "a layer the replay cannot name (on JAX it names the weights)"
    return OverflowHeadroom.finding(
        layer,
        f"on {recipe}, the model's {kind} ({value}) comes from its {dtype} policy: in float32 the same inputs "
        f"leave {at} finite. Replaying it layer by layer: {where.describe()}. A value there goes beyond "
        f"{dtype}'s range (or a constant rounds to 0 in it), not a division in the layer's code",
        confidence=Confidence.HIGH,
        evidence=Evidence.MEASURED,
        measured=f"{kind} on {recipe} in {dtype}, finite in float32",
        fix=(
            'Compute this layer in float32 (dtype="float32"), or give it an epsilon and inputs its compute '
            "dtype can hold."
        ),
        details={
            "recipe": recipe,
            "kind": kind,
            "compute_dtype": dtype,
            "localization": where.to_dict(),
            "zero_rows_of": zero_rows_of,
            "in_float32": "finite",
        },
    )


def realistic_batch(model, view):
    """Typical inputs and the recipes a model really meets (not those outside any realistic
    range), stacked into one batch: what the headroom table is measured on."""
    import keras

    batches = [probe_inputs(model, view).typical(np.random.default_rng(0))]
    batches += [inputs for _, inputs, evidence, _ in _recipes(model, view) if evidence is Evidence.MEASURED]
    return keras.tree.map_structure(lambda *arrays: np.concatenate(arrays), *batches)


def _singular_point_reached(model, view, inputs, recipe: str, zero_rows_of: list[str]) -> Finding | None:
    """A layer the graph checks suspect of a square root or division singular at 0 that the zero
    rows reach as exactly-zero vectors, on a backend whose gradients stayed finite anyway.

    TensorFlow's gradient of `sqrt` is 0 wherever no gradient flows into it, so a clamp put
    outside the root (`maximum(norm_a * norm_b, eps)` choosing eps) hides the infinite
    derivative there; JAX and PyTorch compute 0 * inf = NaN, and the same file trains to NaN
    on them (measured on field report C's hand-written cosine)."""
    from nandoctor.live.graph_checks import GraphChecks
    from nandoctor.live.replay import layers_given_zero_vectors

    suspected = {
        finding.layer: finding
        for finding in GraphChecks().run(model, view)
        if finding.code in (UnguardedDivision.code, SingularGradient.code)
    }
    reached = [layer for layer in layers_given_zero_vectors(model, inputs) if layer in suspected] if suspected else []
    if not reached:
        return None
    layer = reached[0]
    rule = UnguardedDivision if suspected[layer].code == UnguardedDivision.code else SingularGradient
    message = (
        f"on {recipe}, layer '{layer}' receives all-zero vectors, the point where its operation is singular; "
        "the gradients stayed finite here only because this backend passes a zero gradient through it where "
        "none flows in: on JAX and PyTorch the same model's gradient is NaN"
    )
    return rule.finding(
        layer,
        message,
        confidence=Confidence.HIGH,
        evidence=Evidence.MEASURED,
        measured=f"all-zero vectors reaching layer '{layer}' on {recipe}",
        details={"recipe": recipe, "kind": "singular point reached", "zero_rows_of": zero_rows_of},
    )


def _recipes(model, view):
    """(description, inputs, evidence, tables whose zero rows it feeds), the inputs a model
    really meets first, those outside any realistic range last."""
    rng = np.random.default_rng(0)
    inputs = probe_inputs(model, view)
    # Each id input is drawn from the table it feeds: a words input and an entities input
    # have vocabularies of their own, and an id past a table's end is an error, not a probe.
    zero_ids = {slot.name: _zero_row_ids(first_embedding(view, slot.name)) for slot in inputs.ids()}

    def typical(slot, shape):
        return typical_values(slot, shape, rng)

    def zero_or_real(slot, shape):
        zero = zero_ids.get(slot.name)
        return rng.choice(zero, size=shape).astype(slot.dtype) if zero is not None else typical(slot, shape)

    def live(slot, shape):
        zero = zero_ids.get(slot.name)
        rows = np.setdiff1d(np.arange(1, slot.vocabulary), zero if zero is not None else [])
        return rng.choice(rows, size=shape).astype(slot.dtype) if len(rows) else typical(slot, shape)

    with_zero_rows = [slot for slot in inputs.ids() if zero_ids[slot.name] is not None]
    if with_zero_rows:
        first = with_zero_rows[0]
        shown = zero_ids[first.name][:3].tolist()
        # Unknown words are real inputs: a pretrained table's zero rows are ids the model meets.
        tables = [table.name for slot in with_zero_rows if (table := first_embedding(view, slot.name)) is not None]
        yield (
            f"token ids of all-zero embedding rows ({shown}...)",
            inputs.build(lambda slot, shape: zero_or_real(slot, shape) if slot.role == "ids" else typical(slot, shape)),
            Evidence.MEASURED,
            tables,
        )
        if len(inputs.ids()) > 1:
            # One zero row against real vectors: where a clamped division's gradient is 1/eps.
            yield (
                f"a zero embedding row in input '{first.name}' against real ones in the others",
                inputs.build(
                    lambda slot, shape: (
                        (zero_or_real(slot, shape) if slot is first else live(slot, shape))
                        if slot.role == "ids"
                        else typical(slot, shape)
                    )
                ),
                Evidence.MEASURED,
                tables[:1],
            )
    if inputs.ids():
        # Empty texts happen: a batch of them is all padding.
        yield ("all-padding sequences (every id 0)", inputs.build(_all_padding(typical)), Evidence.MEASURED, [])
    towers = inputs.slots
    if len(towers) == 2 and all(slot.role == "ids" for slot in towers) and towers[0].shape == towers[1].shape:
        # The same ids on both towers (a query that is its own candidate): inside both tables.
        same = rng.integers(1, max(min(t.vocabulary for t in towers), 2), size=inputs.shape(towers[0]))
        same = same.astype(towers[0].dtype)
        yield (
            "identical pairs on both towers",
            inputs.pack({towers[0].name: same, towers[1].name: same}),
            Evidence.MEASURED,
            [],
        )
    if any(slot.role == "features" for slot in inputs.slots):
        # A model at initialisation given identical zero features (a LayerNorm over equal
        # tokens has gradients of 1e16 there) says nothing of the data it will train on.
        yield (
            "all-zero inputs",
            inputs.build(
                lambda slot, shape: np.zeros(shape, slot.dtype) if slot.role == "features" else typical(slot, shape)
            ),
            Evidence.ADVERSARIAL,
            [],
        )
        # Large but representable (raw counts, amounts): 1e30 would overflow any norm's
        # squares, guarded or not, which says nothing about its guards. Beyond float16's range.
        yield (
            "inputs of magnitude 1e12",
            inputs.build(
                lambda slot, shape: (
                    np.full(shape, 1e12, slot.dtype) if slot.role == "features" else typical(slot, shape)
                )
            ),
            Evidence.ADVERSARIAL,
            [],
        )


def _all_padding(typical):
    """Every id 0. Where the model takes a padding mask, one real position is left, as every
    tokenizer's output has (a start token): a sequence of padding alone never reaches a model."""

    def fill(slot, shape):
        if slot.role == "ids":
            return np.zeros(shape, slot.dtype)
        if slot.role == "padding_mask":
            mask = np.zeros(shape, slot.dtype)
            mask[:, 0] = 1
            return mask
        return typical(slot, shape)

    return fill


def _zero_row_ids(table) -> np.ndarray | None:
    matrix = table.embedding_matrix() if table is not None else None
    if matrix is None or len(matrix.shape) != 2:
        return None
    zero = matrix.stats().zero_rows
    zero = zero[zero != 0] if zero is not None else None
    return zero if zero is not None and len(zero) else None


def _targets(model, inputs):
    import keras

    outputs = model(inputs, training=False)
    return keras.tree.map_structure(lambda output: np.zeros(np.shape(output), "float32"), outputs)


def _evaluate(model, inputs, judge_size: bool = True) -> tuple[str, str] | None:
    """What breaks: a non-finite output, loss or gradient, or an absurd gradient."""
    outputs, gradients = outputs_and_gradients(model, inputs)
    values = [to_host(o, np.float64) for o in outputs]
    if any(not np.isfinite(v).all() for v in values):
        return "non-finite output", "NaN or Inf in the outputs"
    if any(not np.isfinite(g).all() for g in gradients):
        return "non-finite gradient", "NaN or Inf in the gradients of its weights"
    largest = max((float(np.max(np.abs(g))) if g.size else 0.0 for g in gradients), default=0.0)
    if judge_size and largest > ABSURD_GRADIENT:
        return "absurd gradient", f"a weight gradient of {largest:.3g}"
    return None
