"""Graph checks on hand-written numerics in live models (ND201, ND202, ND203): the same
judgements on TensorFlow's graph and on JAX's jaxpr (the tests marked every_backend run on both)."""

import keras
import pytest

import nandoctor
from nandoctor.live.graph_checks import GraphChecks

# PyTorch gives no graph to read: there the report says the graph checks did not run
# (tests/live/test_every_backend.py).
pytestmark = pytest.mark.skipif(keras.backend.backend() not in GraphChecks.backends,
                                reason=f"the graph checks do not run on {keras.backend.backend()}")


def two_tower(function):
    a, b = keras.Input((4,)), keras.Input((4,))
    return keras.Model([a, b], keras.layers.Lambda(function, name="similarity")([keras.layers.Dense(4)(a), b]))


def norm(t):
    return keras.ops.sqrt(keras.ops.sum(t * t, -1))


def graph_codes(model):
    return sorted({(f.code, f.layer) for f in nandoctor.check(model).findings if f.code in ("ND201", "ND202", "ND203")})


@pytest.mark.every_backend
def test_report_c_cosine_without_epsilon_is_an_unguarded_division_and_a_singular_root():
    model = two_tower(lambda p: keras.ops.sum(p[0] * p[1], -1) / (norm(p[0]) * norm(p[1])))
    assert graph_codes(model) == [("ND201", "similarity"), ("ND202", "similarity")]


@pytest.mark.every_backend
def test_a_clamp_outside_the_root_still_leaves_the_gradient_singular():
    model = two_tower(lambda p: keras.ops.sum(p[0] * p[1], -1) / keras.ops.maximum(norm(p[0]) * norm(p[1]), 1e-7))
    assert graph_codes(model) == [("ND202", "similarity")]


@pytest.mark.every_backend
def test_a_log_of_a_softmax_is_an_unguarded_log_and_the_nan_probe_confirms_it():
    findings = [f for f in nandoctor.check(two_tower(lambda p: keras.ops.log(keras.ops.softmax(p[0])))).findings
                if f.code.startswith("ND2")]
    (finding,) = findings  # the probe's failure confirms the log, not a division
    assert finding.code == "ND203" and "log_softmax" in finding.message and finding.details["operation"].lower().endswith("log")
    assert finding.confidence == "high" and finding.details["probe"]["recipe"] == "inputs of magnitude 1e12"


@pytest.mark.every_backend
@pytest.mark.parametrize("function", [
    lambda p: keras.ops.sum(p[0] * p[1], -1) / (keras.ops.sqrt(keras.ops.sum(p[0] * p[0], -1) + 1e-12)
                                                * keras.ops.sqrt(keras.ops.sum(p[1] * p[1], -1) + 1e-12)),
    lambda p: keras.ops.log(keras.ops.softmax(p[0]) + 1e-7),
    lambda p: p[0] / keras.ops.exp(p[1]),
], ids=["epsilon inside the roots", "log with epsilon", "division by exp"])
def test_guarded_code_is_quiet(function):
    assert graph_codes(two_tower(function)) == []


@pytest.mark.every_backend
def test_keras_and_nandoctor_layers_are_not_judged():
    a, b = keras.Input((4,)), keras.Input((4,))
    x = keras.layers.LayerNormalization()(keras.layers.Dense(4)(a))
    model = keras.Model([a, b], nandoctor.layers.SafeCosineSimilarity()([x, b]))
    assert graph_codes(model) == []


@pytest.mark.every_backend
def test_keras_normalised_dot_is_not_judged_by_its_graph_but_its_gradient_is_measured():
    """Keras's Dot(normalize=True) is Keras's code, never judged from the graph. Its gradient
    at a zero vector is measured: finite (of order 1/epsilon) on TensorFlow, NaN on JAX, where
    Keras takes the norm through a square root at 0; the NaN probe reports what it measured."""
    a, b = keras.Input((4,)), keras.Input((4,))
    x = keras.layers.LayerNormalization()(keras.layers.Dense(4)(a))
    findings = [f for f in nandoctor.check(keras.Model([a, b], keras.layers.Dot(axes=1, normalize=True)([x, b]))).findings
                if f.code.startswith("ND2")]
    assert not [f for f in findings if "operation" in f.details]  # nothing read from the graph
    if keras.backend.backend() == "jax":
        (measured,) = findings
        assert measured.code == "ND202" and "all-zero inputs" in measured.message
    else:
        assert findings == []


@pytest.mark.every_backend
@pytest.mark.parametrize("function, code", [
    (lambda p: keras.ops.power(keras.ops.sum(p[0] * p[0], -1), 0.5), "ND202"),
    (lambda p: keras.ops.power(keras.ops.sum(p[0] * p[0], -1), -1.0), "ND201"),
    (lambda p: keras.ops.arccos(keras.ops.sum(p[0] * p[1], -1)), "ND202"),
], ids=["fractional power", "negative power", "arccos of a dot product"])
def test_powers_and_angles_with_singular_derivatives(function, code):
    assert (code, "similarity") in graph_codes(two_tower(function))


@pytest.mark.every_backend
def test_a_clipped_arccos_and_a_power_of_a_positive_base_are_quiet():
    clipped = lambda p: keras.ops.arccos(keras.ops.clip(keras.ops.sum(p[0] * p[1], -1), -0.999, 0.999))  # noqa: E731
    assert graph_codes(two_tower(clipped)) == []
    assert graph_codes(two_tower(lambda p: keras.ops.power(keras.ops.sum(p[0] * p[0], -1) + 1e-6, 0.5))) == []


class ScaledDotProduct(keras.layers.Layer):
    """keras-io's miniature GPT: scores scaled by the square root of the key width, read from
    the tensor's shape; the block's LayerNormalization is Keras's, called from custom code."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.norm = keras.layers.LayerNormalization(epsilon=1e-6)

    def call(self, x):
        width = keras.ops.cast(keras.ops.shape(x)[-1], "float32")
        scores = keras.ops.matmul(x, keras.ops.transpose(x, (0, 2, 1))) / keras.ops.sqrt(width)
        return self.norm(keras.ops.matmul(keras.ops.softmax(scores), x))


@pytest.mark.every_backend
def test_a_shape_derived_scale_and_keras_own_normalisation_inside_custom_code_are_quiet():
    tokens = keras.Input((8,), dtype="int32")
    x = ScaledDotProduct(name="attention")(keras.layers.Embedding(20, 8)(tokens))
    assert graph_codes(keras.Model(tokens, x)) == []
