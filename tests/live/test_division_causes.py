"""ND201 and ND202 prescribe for the cause they saw: a norm, a masked mean over an empty mask, a
value computed in float16, a masked softmax over a row that is all padding, a clamp outside a
root, an unclipped arc-cosine. The graph checks' operation is read as they trace it
(`fix_for`), and the NaN probe's all-padding measurement as check() reports it; each on a real
small model, with the fix applied quiet."""

import keras
import pytest

import nandoctor
from nandoctor.layers import MaskedMeanPooling
from nandoctor.live.graph_checks import GraphChecks, _forward_operations
from nandoctor.live.model_view import view_of_model
from nandoctor.live.singular_gradient import (
    ANGLE_FIX,
    CLAMPED_ROOT_FIX,
    POWER_FIX,
    ROOT_FIX,
    SingularGradient,
)
from nandoctor.live.unguarded_division import (
    EMPTY_MASK_FIX,
    FLOAT16_FIX,
    GENERIC_FIX,
    MASKED_MEAN_FIX,
    NORM_FIX,
    UnguardedDivision,
)

pytestmark = pytest.mark.every_backend
graph_checks_run = pytest.mark.skipif(
    keras.backend.backend() not in GraphChecks.backends,
    reason=f"the graph checks do not run on {keras.backend.backend()}",
)


def prescriptions(model) -> dict[str, str]:
    """{code: the fix for the operation the graph checks flagged}, for ND201 and ND202."""
    view = view_of_model(model)
    operations = {op.name: op for op in _forward_operations(model, view) or []}
    rules = {rule.code: rule for rule in (UnguardedDivision, SingularGradient)}
    return {
        finding.code: rules[finding.code].fix_for(operations[finding.details["operation"]])
        for finding in GraphChecks().run(model, view)
        if finding.code in rules
    }


def two_tower(function, dtype=None):
    a, b = keras.Input((4,)), keras.Input((4,))
    layer = keras.layers.Lambda(function, name="similarity", dtype=dtype)
    return keras.Model([a, b], layer([keras.layers.Dense(4, dtype=dtype)(a), b]))


def norm(t):
    return keras.ops.sqrt(keras.ops.sum(t * t, -1))


@graph_checks_run
def test_a_cosine_without_epsilon_is_prescribed_a_safe_norm_for_both_codes():
    fixes = prescriptions(two_tower(lambda p: keras.ops.sum(p[0] * p[1], -1) / (norm(p[0]) * norm(p[1]))))
    assert fixes == {"ND201": NORM_FIX, "ND202": ROOT_FIX}
    assert "SafeCosineSimilarity" in fixes["ND201"]


@graph_checks_run
def test_a_vector_divided_by_its_norm_is_prescribed_safe_l2_normalization():
    fixes = prescriptions(two_tower(lambda p: p[0] / keras.ops.expand_dims(norm(p[0]), -1)))
    assert fixes["ND201"] == NORM_FIX and "SafeL2Normalization" in fixes["ND201"]


class MaskedMean(keras.layers.Layer):
    """The masked mean written by hand, as tutorials write it: 0/0 for an all-padding row."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, x, mask=None):
        weights = keras.ops.expand_dims(keras.ops.cast(mask, x.dtype), -1)
        return keras.ops.sum(x * weights, 1) / keras.ops.sum(weights, 1)

    def compute_mask(self, x, mask=None):
        return None


def text_model(pooling):
    tokens = keras.Input((6,), dtype="int32")
    x = keras.layers.Embedding(50, 4, mask_zero=True)(tokens)
    return keras.Model(tokens, keras.layers.Dense(2)(pooling(x)))


@graph_checks_run
def test_a_masked_mean_is_prescribed_masked_mean_pooling():
    fixes = prescriptions(text_model(MaskedMean(name="mean")))
    assert fixes == {"ND201": MASKED_MEAN_FIX} and "MaskedMeanPooling" in fixes["ND201"]


def over_its_squares(p):
    return p[0] / keras.ops.sum(keras.ops.square(p[0]), -1, keepdims=True)


@graph_checks_run
def test_a_denominator_computed_in_float16_is_prescribed_float32():
    fixes = prescriptions(two_tower(over_its_squares, dtype="mixed_float16"))
    assert fixes == {"ND201": FLOAT16_FIX} and 'dtype="float32"' in fixes["ND201"]


@graph_checks_run
def test_the_same_denominator_in_float32_gets_the_generic_guard():
    assert prescriptions(two_tower(over_its_squares)) == {"ND201": GENERIC_FIX}


@graph_checks_run
@pytest.mark.parametrize(
    "function, fix",
    [
        (lambda p: keras.ops.arccos(keras.ops.sum(p[0] * p[1], -1)), ANGLE_FIX),
        (lambda p: keras.ops.power(keras.ops.abs(p[0]), 0.5), POWER_FIX),
    ],
    ids=["unclipped arccos", "square root as a power"],
)
def test_each_singular_gradient_is_prescribed_its_own_cure(function, fix):
    assert prescriptions(two_tower(function)) == {"ND202": fix}


@graph_checks_run
def test_a_clamp_outside_roots_taken_in_another_layer_is_prescribed_moving_its_epsilon():
    """In one layer the roots are named first (their own cure); taken in a layer of their own,
    the division that clamps their product is named too."""
    a, b = keras.Input((4,)), keras.Input((4,))
    norms = keras.layers.Lambda(lambda p: norm(p[0]) * norm(p[1]), name="norms")([a, b])
    dot = keras.layers.Dot(axes=-1)([a, b])
    cosine = keras.layers.Lambda(lambda p: p[0][:, 0] / keras.ops.maximum(p[1], 1e-7), name="cosine")([dot, norms])
    view_model = keras.Model([a, b], cosine)
    view = view_of_model(view_model)
    operations = {op.name: op for op in _forward_operations(view_model, view) or []}
    fixes = {
        finding.layer: SingularGradient.fix_for(operations[finding.details["operation"]])
        for finding in GraphChecks().run(view_model, view)
        if finding.code == "ND202"
    }
    assert fixes == {"norms": ROOT_FIX, "cosine": CLAMPED_ROOT_FIX}


class MaskedAttentionPooling(keras.layers.Layer):
    """Attention pooling whose masked scores are -inf: a row that is all padding softmaxes to NaN."""

    def __init__(self, fill=float("-inf"), **kwargs):
        super().__init__(**kwargs)
        self.fill = fill
        self.supports_masking = True

    def call(self, x, mask=None):
        scores = keras.ops.sum(x, -1)
        if self.fill is None:  # the fix: Keras's softmax takes the mask and fills a finite negative
            weights = keras.layers.Softmax()(scores, mask=mask)
        else:
            weights = keras.ops.softmax(keras.ops.where(mask, scores, self.fill), axis=-1)
        return keras.ops.sum(x * keras.ops.expand_dims(weights, -1), 1)

    def compute_mask(self, x, mask=None):
        return None


def division_findings(model):
    return [f for f in nandoctor.check(model).findings if f.code == "ND201"]


@pytest.mark.parametrize(
    "pooling",
    [
        lambda: keras.layers.GlobalAveragePooling1D(name="pool"),
        lambda: MaskedAttentionPooling(name="pool"),
    ],
    ids=["Keras's GlobalAveragePooling1D", "a softmax masked with -inf"],
)
def test_a_nan_on_all_padding_sequences_is_prescribed_the_empty_mask_cures(pooling, keras_seed):
    (finding,) = division_findings(text_model(pooling()))
    assert finding.layer == "pool" and finding.details["recipe"].startswith("all-padding")
    assert finding.fix == EMPTY_MASK_FIX
    assert "MaskedMeanPooling" in finding.fix and "large finite negative" in finding.fix


@pytest.mark.parametrize(
    "pooling",
    [
        lambda: MaskedMeanPooling(name="pool"),
        lambda: MaskedAttentionPooling(fill=None, name="pool"),
    ],
    ids=["MaskedMeanPooling", "Keras's Softmax with the mask"],
)
def test_with_the_cure_applied_nothing_divides_by_an_empty_mask(pooling, keras_seed):
    assert division_findings(text_model(pooling())) == []


@graph_checks_run
@pytest.mark.parametrize(
    "build, fixes",
    [
        (lambda: text_model(MaskedMean(name="mean")), {"ND201": MASKED_MEAN_FIX}),
        (
            lambda: two_tower(lambda p: keras.ops.sum(p[0] * p[1], -1) / (norm(p[0]) * norm(p[1]))),
            {"ND201": NORM_FIX, "ND202": ROOT_FIX},
        ),
        (lambda: two_tower(over_its_squares, dtype="mixed_float16"), {"ND201": FLOAT16_FIX}),
    ],
    ids=["masked mean", "cosine", "float16 denominator"],
)
def test_check_reports_the_cure_for_what_the_graph_checks_traced(build, fixes, keras_seed):
    report = nandoctor.check(build())
    assert {f.code: f.fix for f in report.findings if f.code in ("ND201", "ND202")} == fixes
