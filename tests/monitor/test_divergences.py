"""The Monitor at its defaults on six runs that really diverge (tests/monitor/divergences.py),
each watched in the same `fit` by a ground truth that pulls every weight to the host at every
step: the Monitor speaks at or before the first non-finite weight, never after the first
non-finite loss (where Keras's TerminateOnNaN stops), and ND702 names the exact step."""

import keras
import pytest

from nandoctor.monitor import Monitor
from tests.monitor.divergences import DIVERGENCES, FirstNonfinite

# Backend-neutral: `make test` runs these again under KERAS_BACKEND=jax.
pytestmark = pytest.mark.every_backend


def watched_run(name: str):
    keras.utils.set_random_seed(0)
    model, x, y, batch_size, epochs = DIVERGENCES[name]()
    truth, monitor = FirstNonfinite(), Monitor(verbose=0)
    model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=False, verbose=0, callbacks=[truth, monitor])
    assert truth.first_step is not None  # the run really diverges
    return truth, monitor


def by_code(monitor, code):
    return [f for f in monitor.report.findings if f.code == code]


@pytest.mark.parametrize("name", DIVERGENCES)
def test_the_monitor_speaks_no_later_than_the_first_nonfinite_value(name):
    truth, monitor = watched_run(name)
    first_warning = min(f.details["step"] for f in monitor.report.findings if f.severity in ("warning", "error"))
    assert truth.weights_step is None or first_warning <= truth.weights_step
    assert truth.loss_step is None or first_warning <= truth.loss_step  # TerminateOnNaN's step


@pytest.mark.parametrize("name", DIVERGENCES)
def test_nd702_names_the_exact_step_the_first_value_went_nonfinite(name):
    truth, monitor = watched_run(name)
    (nonfinite,) = by_code(monitor, "ND702")
    exact = truth.first_step
    assert nonfinite.details["step"] == exact and f"at step {exact}," in nonfinite.message
    assert nonfinite.details["last_finite_step"] == exact - 1


def test_a_loss_that_overflows_before_the_weights_is_named_as_the_loss():
    truth, monitor = watched_run("learning_rate_overflow")
    assert truth.loss_step < truth.weights_step
    (nonfinite,) = by_code(monitor, "ND702")
    assert nonfinite.details["variables"] == [] and "while every weight is still finite" in nonfinite.message


def test_an_overflowing_learning_rate_is_reported_at_its_first_updates():
    _, monitor = watched_run("learning_rate_overflow")
    first = min(f.details["step"] for f in by_code(monitor, "ND703"))
    assert first in (1, 2)


def test_weight_decay_is_forecast_before_the_features_vanish():
    truth, monitor = watched_run("decay_until_features_vanish")
    (shrink,) = by_code(monitor, "ND701")
    assert shrink.layer == "features" and shrink.details["step"] < truth.first_step
    # The kernel is far from underflow: the run would have ended long before it.
    assert shrink.details["underflow_step"] > 4 * truth.first_step
    assert shrink.details["collapse_step"] <= 512 and "before the run ends at step 512" in shrink.message


def test_a_sample_replay_names_where_the_backward_pass_breaks():
    """sqrt at 0 is finite forward and NaN backward: the replay of the batch that broke names
    the layer where the backward pass first turns non-finite (TensorFlow, PyTorch), or on JAX,
    where jax.grad reaches the weights only, the weights whose gradients break."""
    keras.utils.set_random_seed(0)
    model, (a, b), same, batch_size, epochs = DIVERGENCES["sqrt_at_zero_distance"]()
    rows = slice(192, 208)  # the batch that holds the identical pair
    monitor = Monitor(verbose=0, sample=([a[rows], b[rows]], same[rows]))
    model.fit([a, b], same, batch_size=batch_size, epochs=epochs, shuffle=False, verbose=0, callbacks=[monitor])
    (nonfinite,) = by_code(monitor, "ND702")
    where = nonfinite.details["localization"]
    assert "forward_culprit" not in where and any("encoder" in path for path in where["nonfinite_weight_gradients"])
    if keras.backend.backend() == "jax":
        assert "backward_culprit" not in where
    else:
        assert where["backward_culprit"] == "distance" == nonfinite.layer
