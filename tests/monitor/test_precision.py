"""The Monitor under reduced precision and bad data: real runs of tiny Dense models, each
against the same model in float32 or with the fix applied, which must get nothing."""

import keras
import numpy as np
import pytest

from nandoctor.monitor import Monitor
from tests.monitor.divergences import same_on_every_backend
from tests.monitor.test_monitor import by_code

pytestmark = pytest.mark.every_backend


def unnormalised_regression(rows=96):
    """Features of magnitude 300 and a linear target: a float16 Dense's gradients pass 65504."""
    rng = np.random.default_rng(0)
    return (300 * rng.normal(size=(rows, 8))).astype("float32"), rng.normal(size=(rows, 1)).astype("float32")


def regression_model(policy: str, hidden_dtype=None, optimizer=None):
    """Dense(16, relu) -> Dense(1) built under `policy` (the output in float32, as the Keras
    guide says); `hidden_dtype` overrides the hidden layer's."""
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = keras.Sequential(
            [
                keras.Input((8,)),
                keras.layers.Dense(16, activation="relu", dtype=hidden_dtype, name="hidden"),
                keras.layers.Dense(1, dtype="float32", name="output"),
            ]
        )
    finally:
        keras.mixed_precision.set_global_policy("float32")
    model.compile(optimizer or keras.optimizers.Adam(), "mse")
    return model


class BatchesAndLoss(keras.callbacks.Callback):
    """The ground truth, as the progress bar counts: the batch (1-based) at which the loss
    first goes non-finite, and the optimizer's own iterations then."""

    def __init__(self):
        super().__init__()
        self.batches, self.first_nonfinite, self.iterations_then = 0, None, None

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1
        if self.first_nonfinite is None and not np.isfinite(logs["loss"]):
            self.first_nonfinite = self.batches
            self.iterations_then = int(np.asarray(self.model.optimizer.iterations.numpy()))


def train(model, x, y, monitor, epochs=1, batch_size=4, callbacks=()):
    model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=False, verbose=0, callbacks=[monitor, *callbacks])
    return monitor


def test_float16_gradient_overflow_is_reported_when_most_steps_are_skipped(keras_seed):
    x, y = unnormalised_regression()
    model = regression_model("mixed_float16")
    monitor = train(model, x, y, Monitor(verbose=0))
    (collapse,) = by_code(monitor, "ND807")
    # Every step skipped from the first: the 11th is the first with more than half of 20 skipped.
    assert collapse.details["step"] == 11 and collapse.details["first_skipped"] == 1
    assert collapse.details["loss_scale"] == 2.0**15 / 2**11 and collapse.details["initial_loss_scale"] == 2.0**15
    assert "float16 overflow" in collapse.message and collapse.details["evidence"] == "measured"
    assert [f.code for f in monitor.report.findings] == ["ND807"]


@pytest.mark.parametrize(
    "policy, hidden_dtype",
    [("float32", None), ("mixed_float16", "float32")],
    ids=["float32", "overflowing-layer-in-float32"],
)
def test_the_same_run_in_float32_or_with_the_layer_in_float32_gets_nothing(keras_seed, policy, hidden_dtype):
    x, y = unnormalised_regression()
    monitor = train(regression_model(policy, hidden_dtype), x, y, Monitor(verbose=0), epochs=2)
    assert monitor.report.findings == []


def test_a_nonfinite_loss_after_skipped_steps_is_numbered_by_batches(keras_seed):
    x, y = unnormalised_regression()
    # SGD applies the one unscaled update that gets through in full: the next batches overflow forward.
    model = regression_model("mixed_float16", optimizer=keras.optimizers.SGD(0.01))
    truth = BatchesAndLoss()
    monitor = train(model, x, y, Monitor(verbose=0, select="ND702"), callbacks=[truth])
    (nonfinite,) = by_code(monitor, "ND702")
    assert truth.iterations_then < truth.first_nonfinite  # the optimizer's count is behind
    assert (
        nonfinite.details["step"] == truth.first_nonfinite and f"at step {truth.first_nonfinite}," in nonfinite.message
    )


def sgd_overflow_run(policy: str, callbacks=(), **monitor_options):
    """The one unscaled SGD update that gets through is huge: the next batches overflow forward.
    Returns the Monitor and the ground truth."""
    x, y = unnormalised_regression()
    model = regression_model(policy, optimizer=keras.optimizers.SGD(0.01))
    truth = BatchesAndLoss()
    return train(model, x, y, Monitor(verbose=0, **monitor_options), callbacks=[truth, *callbacks]), truth


def test_nd702_names_a_float16_activation_overflow_and_its_cure(keras_seed):
    from nandoctor.monitor.nonfinite_during_training import OVERFLOW_FIX

    monitor, truth = sgd_overflow_run("mixed_float16", sample=unnormalised_regression())
    (collapse,) = by_code(monitor, "ND807")
    (nonfinite,) = by_code(monitor, "ND702")  # ND703 sees the huge update that got through, too
    assert collapse.details["step"] < nonfinite.details["step"]
    assert nonfinite.message.startswith(f"float16 overflow: at step {truth.first_nonfinite},")
    assert nonfinite.fix == OVERFLOW_FIX
    assert nonfinite.layer == "hidden" and nonfinite.confidence == "high"
    assert nonfinite.details["localization"]["culprit_compute_dtype"] == "float16"
    assert "computes in float16 and its output passes 65504" in nonfinite.message


def test_nd702_without_a_sample_says_float16_overflow_from_the_loss(keras_seed):
    monitor, _ = sgd_overflow_run("mixed_float16", select="ND702")
    (nonfinite,) = monitor.report.findings
    assert nonfinite.message.startswith("float16 overflow:") and nonfinite.layer is None
    assert "the loss had reached" in nonfinite.message and nonfinite.details["evidence"] == "measured"


def test_the_same_divergence_in_float32_keeps_the_generic_prescription(keras_seed):
    from nandoctor.monitor.nonfinite_during_training import NonfiniteDuringTraining

    monitor, _ = sgd_overflow_run("float32", sample=unnormalised_regression())
    nonfinite = by_code(monitor, "ND702")
    assert nonfinite and "float16" not in nonfinite[0].message and nonfinite[0].fix == NonfiniteDuringTraining.fix


def offset_regression():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype("float32")
    return x, (x @ rng.normal(size=(8, 1)) + 3).astype("float32")


def adam_dense(dtype):
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1, dtype=dtype, name="dense")], name="regression")
    model.compile(keras.optimizers.Adam(), loss="mse")
    return model


def test_bfloat16_weights_under_adam_are_reported_frozen_while_the_loss_stays_flat(keras_seed):
    x, y = offset_regression()
    model = adam_dense("bfloat16")
    monitor = train(model, x, y, Monitor(verbose=0), epochs=3, batch_size=8)
    losses = model.history.history["loss"]
    assert losses[0] > 1 and losses == [losses[0]] * 3  # identical epoch after epoch
    (frozen,) = monitor.report.findings
    assert frozen.code == "ND808" and frozen.layer == "dense" and frozen.details["step"] == 20
    assert frozen.details["variables"] == ["regression/dense/kernel", "regression/dense/bias"]
    assert frozen.details["dtypes"] == ["bfloat16"] and "beta_2=0.999 is 1.0 in bfloat16" in frozen.message


@pytest.mark.parametrize("dtype", ["float32", "mixed_bfloat16"])
def test_the_same_dense_with_float32_weights_is_not_frozen(keras_seed, dtype):
    x, y = offset_regression()
    model = adam_dense(dtype)
    monitor = train(model, x, y, Monitor(verbose=0), epochs=3, batch_size=8)
    assert model.history.history["loss"][2] < model.history.history["loss"][0]
    assert monitor.report.findings == []


def data_with_bad_rows(input_rows=(), target_rows=()):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    x[list(input_rows), 3] = np.nan
    y[list(target_rows), 0] = np.inf
    return x, y


def hidden_relu_model():
    inputs = keras.Input((8,), name="features")
    hidden = keras.layers.Dense(16, activation="relu", name="hidden")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1, name="output")(hidden))
    model.compile(keras.optimizers.SGD(0.01), "mse")
    return same_on_every_backend(model)


def test_nan_rows_in_the_data_are_named_by_input_and_row_not_blamed_on_a_layer(keras_seed):
    x, y = data_with_bad_rows(input_rows=(40, 41))
    monitor = train(hidden_relu_model(), x, y, Monitor(verbose=0, sample=(x, y)), batch_size=8)
    (bad_data,) = monitor.report.findings  # and no ND702 naming 'hidden' the culprit
    assert bad_data.code == "ND809" and bad_data.layer is None
    assert bad_data.details["step"] == 6  # rows 40-47 are the sixth batch
    assert bad_data.details["inputs"] == {"features": [40, 41]} and bad_data.details["targets"] == []
    assert "input 'features' holds non-finite values in 2 of 64 rows (40, 41)" in bad_data.message


def test_an_infinite_target_is_named_by_its_row(keras_seed):
    x, y = data_with_bad_rows(target_rows=(50,))
    monitor = train(hidden_relu_model(), x, y, Monitor(verbose=0, sample=(x, y)), batch_size=8)
    (bad_data,) = monitor.report.findings
    assert (bad_data.code, bad_data.details["step"], bad_data.details["targets"]) == ("ND809", 7, [50])


def test_the_same_data_with_the_bad_rows_dropped_gets_nothing(keras_seed):
    x, y = data_with_bad_rows(input_rows=(40, 41))
    finite = np.isfinite(x).all(axis=1)
    monitor = train(
        hidden_relu_model(), x[finite], y[finite], Monitor(verbose=0, sample=(x[finite], y[finite])), batch_size=8
    )
    assert monitor.report.findings == []


def few_positives():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype("float32")
    return x, (x[:, :1] > 1.0).astype("float32")


def hand_written_recall(y_true, y_pred):
    return keras.ops.sum(y_true * keras.ops.round(y_pred)) / keras.ops.sum(y_true)  # 0 / 0 without positives


def classifier(metric):
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1, activation="sigmoid", name="classifier")])
    model.compile(keras.optimizers.Adam(), loss="binary_crossentropy", metrics=[metric])
    return model


def test_a_metric_gone_nan_while_the_loss_and_weights_are_finite_is_reported_as_that(keras_seed):
    x, y = few_positives()
    monitor = train(classifier(hand_written_recall), x, y, Monitor(verbose=0), batch_size=8)
    first_batch_without_positives = 1 + int(np.flatnonzero(y.reshape(8, 8).sum(axis=1) == 0)[0])
    (metric,) = monitor.report.findings
    assert (metric.code, metric.details["step"], metric.details["metrics"]) == (
        "ND810",
        first_batch_without_positives,
        ["hand_written_recall"],
    )
    assert "'hand_written_recall' is nan while the loss" in metric.message and metric.severity == "warning"


def test_kerass_own_recall_on_the_same_run_gets_nothing(keras_seed):
    x, y = few_positives()
    monitor = train(classifier(keras.metrics.Recall()), x, y, Monitor(verbose=0), batch_size=8)
    assert monitor.report.findings == []


def test_a_metric_that_follows_a_diverging_loss_is_left_to_nd702(keras_seed):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2048, 8)).astype("float32")
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(4.0), "mse", metrics=["mae"])  # far past the stable step
    monitor = train(model, x, x @ np.ones((8, 1), "float32"), Monitor(verbose=0), batch_size=32)
    assert by_code(monitor, "ND702") and by_code(monitor, "ND810") == []


def csv_rows(path):
    import csv

    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def test_the_monitors_figures_reach_csvlogger_and_history_under_loss_scaling(keras_seed, tmp_path):
    x, y = unnormalised_regression()
    model = regression_model("mixed_float16")
    monitor = Monitor(verbose=0)
    train(model, x, y, monitor, callbacks=[keras.callbacks.CSVLogger(str(tmp_path / "log.csv"))])
    (row,) = csv_rows(tmp_path / "log.csv")
    skipped = 24 - int(np.asarray(model.optimizer.iterations.numpy()))  # batches run against updates applied
    assert skipped > 12 and float(row["nandoctor/skipped_steps"]) == skipped
    assert float(row["nandoctor/loss_scale"]) == float(np.asarray(model.optimizer.dynamic_scale.numpy())) < 1
    assert float(row["nandoctor/nonfinite_steps"]) == 0
    assert 0 < float(row["nandoctor/min_weight_norm"]) < float(row["nandoctor/max_weight_norm"])
    assert model.history.history["nandoctor/skipped_steps"] == [skipped]


def test_nonfinite_steps_are_counted_in_the_logs_and_float32_has_no_loss_scale(keras_seed, tmp_path):
    monitor, truth = sgd_overflow_run("float32")
    assert monitor.model.history.history["nandoctor/nonfinite_steps"] == [truth.batches - truth.first_nonfinite + 1]
    assert "nandoctor/loss_scale" not in monitor.model.history.history


def test_an_infinite_log_of_zero_under_float16_keeps_the_generic_prescription(keras_seed):
    """No loss near 65504 before it and no sample: float16 overflow is only possible, so the
    finding says so and keeps ND702's own fix (here the cause is log(0))."""
    from nandoctor.monitor.nonfinite_during_training import NonfiniteDuringTraining

    x = np.random.default_rng(0).normal(size=(64, 8)).astype("float32")
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = keras.Sequential(
            [keras.Input((8,)), keras.layers.Dense(1, activation="relu", kernel_initializer="zeros")]
        )
    finally:
        keras.mixed_precision.set_global_policy("float32")
    model.compile(keras.optimizers.SGD(), loss=lambda y_true, y_pred: -keras.ops.mean(keras.ops.log(y_pred)))
    monitor = train(model, x, np.zeros((64, 1), "float32"), Monitor(verbose=0), batch_size=8)
    (nonfinite,) = monitor.report.findings
    assert nonfinite.code == "ND702" and nonfinite.fix == NonfiniteDuringTraining.fix
    assert (
        not nonfinite.message.startswith("float16 overflow")
        and "an overflow there is infinite too" in nonfinite.message
    )
