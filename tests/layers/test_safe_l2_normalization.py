"""SafeL2Normalization: x / ||x|| away from zero, a zero vector mapped to zero with a bounded
gradient, in float32 and in both mixed policies, where Keras's UnitNormalization gives NaN
(measured here, so the test says when Keras changes)."""

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nandoctor.analysis.precision import FLOAT_FORMATS
from nandoctor.layers import SafeL2Normalization
from tests.layers.layer_test_case import run_layer_test
from tests.layers.test_mixed_precision import value_and_gradient

# Backend-neutral: `make test` runs these again under KERAS_BACKEND=jax.
pytestmark = pytest.mark.every_backend

POLICIES = ["float32", "mixed_float16", "mixed_bfloat16"]


def normalized(layer, x):
    return np.asarray(keras.ops.convert_to_numpy(keras.ops.cast(layer(x), "float32")))


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float32, (3, 5), elements=st.floats(-1e6, 1e6, width=32)))
def test_equals_x_over_its_norm_away_from_zero(x):
    norms = np.linalg.norm(x.astype(np.float64), axis=-1, keepdims=True)
    away = norms[:, 0] > 1e-2
    np.testing.assert_allclose(
        normalized(SafeL2Normalization(), x)[away], (x / np.maximum(norms, 1e-30))[away], rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("dtype", POLICIES)
def test_a_zero_vector_maps_to_zero_with_a_gradient_the_dtype_holds(dtype):
    layer = SafeL2Normalization(dtype=dtype)
    a = np.zeros((1, 3), np.float32)
    value, gradient = value_and_gradient(
        lambda pair: keras.ops.sum(keras.ops.multiply(layer(pair[0]), pair[1]), -1),
        a,
        np.array([[1.0, 2.0, 3.0]], np.float32),
    )
    assert np.asarray(value, "float32").tolist() == [0.0]
    largest = float(np.max(np.abs(np.asarray(gradient, "float32"))))
    assert np.isfinite(largest) and largest <= 3.01 / layer.resolved_epsilon
    assert largest < FLOAT_FORMATS[keras.DTypePolicy(dtype).compute_dtype].largest


@pytest.mark.parametrize("dtype", POLICIES)
def test_vectors_whose_squares_overflow_float16_still_normalise(dtype):
    out = normalized(SafeL2Normalization(dtype=dtype), np.array([[300.0, 400.0]], np.float32))
    np.testing.assert_allclose(out, [[0.6, 0.8]], rtol=1e-2)


def test_keras_unit_normalization_breaks_where_this_layer_does_not():
    """Keras 3.15, under mixed_float16: a zero vector gives NaN and [300, 400] gives [0, 0]."""
    x = np.array([[0.0, 0.0], [300.0, 400.0]], np.float32)
    keras_out = normalized(keras.layers.UnitNormalization(dtype="mixed_float16"), x)
    assert np.isnan(keras_out[0]).all() and keras_out[1].tolist() == [0.0, 0.0]
    np.testing.assert_allclose(
        normalized(SafeL2Normalization(dtype="mixed_float16"), x), [[0, 0], [0.6, 0.8]], rtol=1e-2
    )


def test_safe_l2_normalization_contract(tmp_path):
    x = np.random.default_rng(0).normal(size=(4, 5, 6)).astype("float32")
    run_layer_test(SafeL2Normalization, {}, x, (4, 5, 6), 0, tmp_path)


def test_epsilon_must_be_positive():
    with pytest.raises(ValueError, match="Received: epsilon=0"):
        SafeL2Normalization(epsilon=0)
