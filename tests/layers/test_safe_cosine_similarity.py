"""SafeCosineSimilarity's promise, finite value and gradient for every float32 input, checked
with the gradients of the backend it runs on (GradientTape, jax.grad, torch.autograd): report
C's users train on all of them."""

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from keras import ops

from nandoctor.layers import SafeCosineSimilarity, safe_l2_normalize, safe_norm
from tests.layers.layer_test_case import run_layer_test

pytestmark = pytest.mark.every_backend

DIM = 6
BIG = float(np.float32(1e30))
edge_values = st.sampled_from([0.0, -0.0, 1e-45, -1e-38, 1e-30, 1e-20, 1.0, -2.5, 1e20, -3.4e38, 3.4e38])
any_float32 = st.one_of(st.floats(width=32, allow_nan=False, allow_infinity=False), edge_values)
vectors = hnp.arrays(np.float32, (2, DIM), elements=any_float32)


def gradients(function, *arrays):
    """The gradients of sum(function(*arrays)) with respect to each array, on this backend."""
    if keras.backend.backend() == "jax":
        import jax

        grads = jax.grad(lambda *xs: ops.sum(function(*xs)), argnums=tuple(range(len(arrays))))(*arrays)
        return [np.asarray(g) for g in grads]
    if keras.backend.backend() == "torch":
        import torch

        tensors = [torch.tensor(x, requires_grad=True) for x in arrays]
        return [g.numpy() for g in torch.autograd.grad(ops.sum(function(*tensors)), tensors)]
    import tensorflow as tf

    variables = [tf.Variable(x) for x in arrays]
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(function(*variables))
    return [g.numpy() for g in tape.gradient(total, variables)]


def value_and_gradients(cosine, a: np.ndarray, b: np.ndarray):
    value = ops.convert_to_numpy(cosine([a, b]))
    grad_a, grad_b = gradients(lambda x, y: cosine([x, y]), a, b)
    return value, grad_a, grad_b


def is_finite(cosine, a, b) -> bool:
    return all(np.isfinite(x).all() for x in value_and_gradients(cosine, a, b))


def exact_cosine(a, b):
    a, b = a.astype(np.float64), b.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


@settings(max_examples=150, deadline=None)
@given(vectors, vectors)
def test_value_and_gradient_are_finite_for_any_float32_vectors(a, b):
    value, grad_a, grad_b = value_and_gradients(SafeCosineSimilarity(), a, b)
    assert np.isfinite(value).all() and np.isfinite(grad_a).all() and np.isfinite(grad_b).all()
    assert (np.abs(value) <= 1.0 + 1e-5).all()


@settings(max_examples=150, deadline=None)
@given(
    hnp.arrays(np.float32, (2, DIM), elements=st.floats(-1e6, 1e6, width=32)),
    hnp.arrays(np.float32, (2, DIM), elements=st.floats(-1e6, 1e6, width=32)),
)
def test_equals_the_exact_cosine_away_from_zero(a, b):
    away = (np.linalg.norm(a, axis=-1) > 1e-2) & (np.linalg.norm(b, axis=-1) > 1e-2)
    value = ops.convert_to_numpy(SafeCosineSimilarity()([a, b]))
    np.testing.assert_allclose(value[away], exact_cosine(a, b)[away], atol=1e-4)


def test_a_zero_vector_scores_zero_with_a_bounded_gradient():
    a = np.zeros((1, DIM), np.float32)
    b = np.ones((1, DIM), np.float32)
    value, grad_a, grad_b = value_and_gradients(SafeCosineSimilarity(epsilon=1e-6), a, b)
    assert value.tolist() == [0.0] and np.abs(grad_b).max() == 0.0
    assert np.abs(grad_a).max() <= 1e6


@settings(max_examples=150, deadline=None)
@given(
    hnp.arrays(np.float32, (2, DIM), elements=st.floats(-BIG, BIG, width=32)),
    hnp.arrays(np.float32, (2, DIM), elements=st.floats(-BIG, BIG, width=32)),
)
def test_gradient_is_bounded_by_one_over_epsilon(a, b):
    """Cosine is scale-free, so no input should get a gradient beyond the 1/epsilon that a
    zero vector's undefined direction costs; a guard outside the roots breaks this."""
    assert gradient_within_bound(SafeCosineSimilarity(epsilon=1e-6), a, b, epsilon=1e-6)


def gradient_within_bound(cosine, a, b, epsilon) -> bool:
    _, grad_a, grad_b = value_and_gradients(cosine, a, b)
    return bool(np.abs(grad_a).max() <= 1.01 / epsilon and np.abs(grad_b).max() <= 1.01 / epsilon)


def report_c_cosine(inputs, epsilon=1e-6):
    """Field report C's accepted answer: one clamp on the product of the norms, outside the roots."""
    a, b = inputs
    norms = ops.sqrt(ops.sum(a * a, -1)) * ops.sqrt(ops.sum(b * b, -1))
    return ops.sum(a * b, -1) / ops.maximum(norms, epsilon)


def test_the_properties_fail_for_report_c_guard():
    """Not vacuous: report C's guard gives a zero vector a gradient of b / epsilon (1e16
    here, measured 1e7 against a unit vector at epsilon 1e-7), and overflows to NaN on
    large inputs, where SafeCosineSimilarity passes both properties."""
    zero, large = np.zeros((1, DIM), np.float32), np.full((1, DIM), 1e10, np.float32)
    assert not gradient_within_bound(report_c_cosine, zero, large, epsilon=1e-6)
    assert gradient_within_bound(SafeCosineSimilarity(epsilon=1e-6), zero, large, epsilon=1e-6)
    huge = np.full((1, DIM), 3e38, np.float32)
    with np.errstate(over="ignore"):  # the overflow the guard lets through is the point
        assert not is_finite(report_c_cosine, huge, huge)
    assert is_finite(SafeCosineSimilarity(), huge, huge)


def test_an_epsilon_added_outside_the_root_leaves_the_norm_gradient_nan():
    """Measured on TF 2.21 and JAX 0.10: sqrt(sum x^2) + eps has a NaN gradient at 0; safe_norm has 0."""
    x = np.zeros((1, DIM), np.float32)
    (outside,) = gradients(lambda t: ops.sqrt(ops.sum(t * t, -1)) + 1e-6, x)
    (inside,) = gradients(safe_norm, x)
    assert np.isnan(outside).all()
    assert (inside == 0).all()


def test_safe_norm_is_within_epsilon_and_its_gradient_is_zero_at_zero():
    x = np.array([[3.0, 4.0], [0.0, 0.0]], np.float32)
    np.testing.assert_allclose(ops.convert_to_numpy(safe_norm(x)), [5.0, 1e-6], rtol=1e-6)
    (gradient,) = gradients(safe_norm, x)
    assert gradient[1].tolist() == [0.0, 0.0]
    np.testing.assert_allclose(
        np.linalg.norm(safe_l2_normalize(np.array([[3e38, 3e38]], np.float32)), axis=-1), 1.0, rtol=1e-6
    )


def test_layer_contract(tmp_path):
    data = [
        np.random.default_rng(0).normal(size=(4, 1, DIM)).astype("float32"),
        np.random.default_rng(1).normal(size=(4, 5, DIM)).astype("float32"),
    ]
    run_layer_test(SafeCosineSimilarity, {}, data, (4, 5), 0, tmp_path)


def test_epsilon_must_be_positive():
    with pytest.raises(ValueError, match="Received: epsilon=0"):
        SafeCosineSimilarity(epsilon=0)
