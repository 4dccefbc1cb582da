"""The Monitor's statistics against numpy in float64, on every backend: the norm on both of its
paths (one pass over the squares, or scaled by the largest value where the squares would
underflow or overflow), the largest magnitude, the count of non-finite values, the fraction of
zeros, an embedding's all-zero rows, the norm of the update since the snapshot, and the
every-step sentinel."""

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nandoctor.monitor.stats import MAX_ABS, NONFINITE, NORM, UPDATE_NORM, ZERO_FRACTION, ZERO_ROWS, StatsKernel

pytestmark = pytest.mark.every_backend

SHAPE = (7, 5)
# Normal float32 magnitudes from 1e-30 (squares far below float32's smallest) to 1e36 (squares
# far above its largest; the norm of 35 of them still fits).
signed_mantissas = hnp.arrays(np.float64, SHAPE, elements=st.floats(0.1, 1.0)).map(
    lambda m: m * np.where(np.arange(m.size).reshape(SHAPE) % 3 == 0, -1, 1)
)
scales = st.integers(-30, 35).map(lambda k: 10.0**k)
masks = hnp.arrays(np.bool_, SHAPE)
specials = st.lists(
    st.tuples(st.integers(0, SHAPE[0] - 1), st.integers(0, SHAPE[1] - 1), st.sampled_from([np.nan, np.inf, -np.inf])),
    max_size=3,
)


@st.composite
def weights(draw, finite_only=False):
    values = draw(signed_mantissas) * draw(scales)
    values[draw(masks)] = 0.0
    if draw(st.booleans()):
        values[draw(st.integers(0, SHAPE[0] - 1))] = 0.0  # an all-zero row
    for row, column, special in [] if finite_only else draw(specials):
        values[row, column] = special
    return values.astype(np.float32)


@pytest.fixture(scope="module")
def kernel_and_variable():
    variable = keras.Variable(np.zeros(SHAPE, np.float32), name="embeddings")
    return StatsKernel([variable], [True], snapshots=True), variable


@settings(max_examples=80, deadline=None)
@given(weights(), weights(finite_only=True))
def test_statistics_match_numpy_in_float64(kernel_and_variable, values, previous):
    kernel, variable = kernel_and_variable
    variable.assign(previous)
    kernel.snapshot()
    variable.assign(values)
    (row,) = kernel()

    finite = np.isfinite(values)
    cleaned = np.where(finite, values, 0.0).astype(np.float64)
    expected_update = np.where(finite, values, 0.0).astype(np.float32) - previous  # float32, as on the device
    assert row[NONFINITE] == (~finite).sum()
    assert row[MAX_ABS] == np.abs(cleaned).max()
    np.testing.assert_allclose(row[NORM], np.linalg.norm(cleaned), rtol=1e-5)
    np.testing.assert_allclose(row[UPDATE_NORM], np.linalg.norm(expected_update.astype(np.float64)), rtol=1e-5)
    assert row[ZERO_FRACTION] == pytest.approx((cleaned == 0).mean(), abs=1e-6)
    assert row[ZERO_ROWS] == (values == 0).all(axis=1).sum()
    assert kernel.any_nonfinite() == (not finite.all()) or np.abs(values.astype(np.float64)).sum() > 3e38


@settings(max_examples=40, deadline=None)
@given(weights())
def test_the_every_step_sentinel_sees_every_nonfinite_weight(kernel_and_variable, values):
    kernel, variable = kernel_and_variable
    variable.assign(values)
    if not np.isfinite(values).all():
        assert kernel.any_nonfinite()
    elif np.abs(values.astype(np.float64)).sum() < 3e38:  # no partial sum can overflow
        assert not kernel.any_nonfinite()
