"""The Monitor on models that really diverge (tiny, CPU, seconds each)."""

import json

import keras
import numpy as np
import pytest

import nandoctor
from nandoctor.monitor import Monitor, NonfiniteTrainingError

STEPS = 1200


def shrinking_model(normalise: bool):
    """A kernel pulled geometrically to zero (zero targets, L2); optionally normalised by a
    hand-written x / norm(x), switched off by a zero weight until the squares underflow."""
    inputs = keras.Input((8,))
    h = keras.layers.Dense(8, use_bias=False, kernel_regularizer=keras.regularizers.L2(0.25), name="shrinking")(inputs)
    if normalise:
        h = keras.layers.Lambda(
            lambda t: t + 0.0 * t / keras.ops.sqrt(keras.ops.sum(t * t, -1, keepdims=True)), name="normalise"
        )(h)
    model = keras.Model(inputs, h)
    model.compile(keras.optimizers.SGD(0.1), "mse")
    return model


def fit(model, x, y, monitor, batch_size=1, **kwargs):
    model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0, callbacks=[monitor] if monitor else [], **kwargs)
    return monitor


def features(rows=STEPS, width=8, seed=0):
    return np.random.default_rng(seed).normal(size=(rows, width)).astype("float32")


def by_code(monitor, code):
    return [f for f in monitor.report.findings if f.code == code]


@pytest.mark.every_backend
def test_shrinking_weights_are_forecast_long_before_they_turn_nan(keras_seed):
    x = features()
    monitor = fit(shrinking_model(normalise=True), x, np.zeros_like(x), Monitor(verbose=0))
    (shrink,) = by_code(monitor, "ND701")
    (nonfinite,) = by_code(monitor, "ND702")
    first_nan = nonfinite.details["step"]
    assert first_nan - shrink.details["step"] >= 0.1 * STEPS
    assert abs(shrink.details["forecast_step"] - first_nan) <= 0.05 * first_nan
    assert (shrink.layer, nonfinite.layer) == ("shrinking", "shrinking")
    assert nonfinite.details["variables"] == ["shrinking/kernel"]


def smallest_positive_float32() -> float:
    """What this backend's arithmetic keeps: TensorFlow and XLA flush subnormal results to zero
    on the CPU (the smallest normal float32 is the floor), PyTorch keeps them."""
    tiny = np.finfo(np.float32).tiny
    half = keras.ops.convert_to_numpy(keras.ops.multiply(np.array([tiny], "float32"), np.array([0.5], "float32")))
    return float(np.finfo(np.float32).smallest_subnormal if half[0] > 0 else tiny)


@pytest.mark.every_backend
def test_decay_to_underflow_is_forecast_from_the_health_log(keras_seed, tmp_path):
    x = features(rows=1500)  # where subnormals are kept, the values go on falling past 1e-38
    model = shrinking_model(normalise=False)
    monitor = fit(model, x, np.zeros_like(x), Monitor(log_dir=tmp_path, verbose=0))
    (shrink,) = by_code(monitor, "ND701")
    records = [json.loads(line) for line in (tmp_path / "nandoctor-health.jsonl").read_text().splitlines()]
    max_abs = {r["step"]: r["variables"][0]["max_abs"] for r in records}
    # The decay stalls just above the backend's smallest positive float32 (rounding at its
    # last bits): the crossing of 10x that value marks the underflow.
    underflow = min(step for step, value in max_abs.items() if value < 10 * smallest_positive_float32())
    assert shrink.details["step"] < 0.9 * underflow
    assert abs(shrink.details["underflow_step"] - underflow) <= 0.1 * underflow
    assert by_code(monitor, "ND702") == []


def report_c_model(rng):
    """Field report C: gensim tables with zero rows, the hand-written cosine as first written
    (before the accepted answer's epsilon), the max-margin loss as the output, Adam. On
    TensorFlow 2.21 the epsilon variants stay finite (see tests/layers), this one does not."""
    vocab, entities, width = 60, 30, 8
    words_table = rng.normal(scale=0.3, size=(vocab, width)).astype("float32")
    words_table[rng.choice(vocab, 20, replace=False)] = 0.0
    entity_table = rng.normal(scale=0.3, size=(entities, width)).astype("float32")
    entity_table[rng.choice(entities, 10, replace=False)] = 0.0

    def cosine(pair):
        a, b = pair
        norm = lambda t: keras.ops.sqrt(keras.ops.sum(t * t, -1))  # noqa: E731
        return keras.ops.sum(a * b, -1) / (norm(a) * norm(b))

    words, positive, negative = (
        keras.Input((6,), dtype="int32"),
        keras.Input((1,), dtype="int32"),
        keras.Input((4,), dtype="int32"),
    )
    x = keras.layers.Embedding(vocab, width, weights=[words_table], name="word_emb")(words)
    x = keras.layers.GlobalMaxPooling1D()(keras.layers.Conv1D(16, 3, activation="tanh", name="conv")(x))
    z = keras.layers.Dense(width, name="z")(x)
    entity = keras.layers.Embedding(entities, width, weights=[entity_table], name="entity_emb")
    pos = keras.layers.Lambda(cosine, name="cos_pos")([keras.layers.Reshape((1, width))(z), entity(positive)])
    neg = keras.layers.Lambda(cosine, name="cos_neg")([keras.layers.RepeatVector(4)(z), entity(negative)])
    margin = keras.layers.Lambda(lambda s: keras.ops.sum(keras.ops.relu(1.0 + s[1] - s[0]), -1, keepdims=True))(
        [pos, neg]
    )
    model = keras.Model([words, positive, negative], margin)
    model.compile(keras.optimizers.Adam(0.01), loss=lambda y_true, y_pred: keras.ops.mean(y_pred))
    data = [rng.integers(0, vocab, (64, 6)), rng.integers(0, entities, (64, 1)), rng.integers(0, entities, (64, 4))]
    return model, data


@pytest.mark.every_backend
def test_report_c_names_the_first_nonfinite_variables_and_layers(keras_seed):
    rng = np.random.default_rng(0)
    model, data = report_c_model(rng)
    monitor = fit(model, data, np.zeros((64, 1)), Monitor(every_n_steps=1, verbose=0), batch_size=8)
    (finding,) = by_code(monitor, "ND702")
    assert finding.details["step"] >= 1 and "entity_emb/embeddings" in finding.details["variables"]
    assert {"entity_emb", "z", "conv"} <= set(finding.details["layers"])


@pytest.mark.every_backend
def test_exploding_updates_are_reported_before_the_weights_overflow(keras_seed):
    x = features(rows=400)
    y = (x @ np.ones((8, 1)) * 100).astype("float32")
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(16, name="hidden"), keras.layers.Dense(1, name="out")]
    )
    model.compile(keras.optimizers.SGD(0.5), "mse")
    monitor = fit(model, x, y, Monitor(every_n_steps=1, verbose=0), batch_size=4)
    exploding, nonfinite = by_code(monitor, "ND703"), by_code(monitor, "ND702")
    assert exploding and nonfinite
    assert min(f.details["step"] for f in exploding) < nonfinite[0].details["step"]


@pytest.mark.every_backend
def test_a_non_finite_loss_with_finite_weights_is_reported(keras_seed):
    x = features(rows=64)
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(1, activation="relu", kernel_initializer="zeros", name="out")]
    )
    model.compile(keras.optimizers.SGD(0.01), loss=lambda y_true, y_pred: -keras.ops.mean(keras.ops.log(y_pred)))
    monitor = fit(model, x, np.zeros((64, 1)), Monitor(every_n_steps=1, verbose=0), batch_size=8)
    (finding,) = by_code(monitor, "ND702")
    assert finding.details["step"] == 1 and not np.isfinite(finding.details["loss"])


def seeded_run(with_monitor: bool):
    keras.utils.set_random_seed(7)
    x = features(rows=96, seed=7)
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dropout(0.2), keras.layers.Dense(1)]
    )
    model.compile(keras.optimizers.Adam(0.01), "mse")
    monitor = Monitor(every_n_steps=1, verbose=0) if with_monitor else None
    fit(model, x, x[:, :1] * 2, monitor, batch_size=8)
    return [np.array(w) for w in model.get_weights()], monitor


@pytest.mark.every_backend
def test_without_an_action_the_run_is_bitwise_identical():
    plain, _ = seeded_run(False)
    watched, monitor = seeded_run(True)
    assert monitor.report.findings == []
    assert all(np.array_equal(a, b) for a, b in zip(plain, watched))


class RecordWeights(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.at_step = {}

    def on_train_batch_end(self, batch, logs=None):
        self.at_step[int(self.model.optimizer.iterations)] = [np.array(w) for w in self.model.get_weights()]


@pytest.mark.every_backend
def test_restore_last_good_puts_back_the_last_finite_check(keras_seed):
    x = features(rows=400)
    y = (x @ np.ones((8, 1)) * 100).astype("float32")
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(16, name="hidden"), keras.layers.Dense(1, name="out")]
    )
    model.compile(keras.optimizers.SGD(0.5), "mse")
    record = RecordWeights()
    monitor = Monitor(every_n_steps=2, on_nonfinite="stop", restore_last_good=True, verbose=0)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[record, monitor])
    assert monitor.restored and model.stop_training
    weights = model.get_weights()
    assert all(np.isfinite(w).all() for w in weights)
    assert all(np.array_equal(a, b) for a, b in zip(weights, record.at_step[monitor.last_good_step]))


@pytest.mark.every_backend
def test_raise_stops_fit_with_the_finding(keras_seed):
    x = features()
    with pytest.raises(NonfiniteTrainingError, match="shrinking/kernel"):
        fit(shrinking_model(normalise=True), x, np.zeros_like(x), Monitor(on_nonfinite="raise", verbose=0))


@pytest.mark.every_backend
@pytest.mark.parametrize("compile_options", [{"jit_compile": True}, {"steps_per_execution": 5}])
def test_works_with_xla_and_several_steps_per_execution(keras_seed, compile_options):
    if keras.backend.backend() == "torch" and "steps_per_execution" in compile_options:
        pytest.skip("Keras refuses steps_per_execution > 1 on PyTorch")
    x = features()
    model = shrinking_model(normalise=True)
    model.compile(keras.optimizers.SGD(0.1), "mse", **compile_options)
    monitor = fit(model, x, np.zeros_like(x), Monitor(verbose=0))
    assert {f.code for f in monitor.report.findings} == {"ND701", "ND702"}


@pytest.mark.every_backend
def test_the_report_renders_with_every_reporter(keras_seed):
    from nandoctor.reporters import render

    x = features()
    monitor = fit(shrinking_model(normalise=True), x, np.zeros_like(x), Monitor(verbose=0))
    assert (
        "ND701" in render(monitor.report, "text") and json.loads(monitor.report.to_json())["summary"]["findings"] == 2
    )


@pytest.mark.every_backend
def test_options_are_checked():
    with pytest.raises(ValueError, match="Received: on_nonfinite='halt'"):
        Monitor(on_nonfinite="halt")
    with pytest.raises(ValueError, match="Received: every_n_steps=0"):
        Monitor(every_n_steps=0)
    assert nandoctor.Monitor is Monitor


@pytest.mark.every_backend
@pytest.mark.parametrize("jit_compile", [False, True])
def test_a_sample_localises_the_culprit_layer_even_under_xla(keras_seed, jit_compile):
    rng = np.random.default_rng(0)
    model, data = report_c_model(rng)
    model.compile(
        keras.optimizers.Adam(0.01), loss=lambda y_true, y_pred: keras.ops.mean(y_pred), jit_compile=jit_compile
    )
    sample = ([part[:8] for part in data], np.zeros((8, 1)))
    monitor = fit(model, data, np.zeros((64, 1)), Monitor(every_n_steps=1, verbose=0, sample=sample), batch_size=8)
    (finding,) = by_code(monitor, "ND702")
    where = finding.details["localization"]
    assert where["forward_culprit"] in ("cos_pos", "cos_neg") and finding.layer == where["forward_culprit"]
    assert "the culprit" in finding.message


def test_weights_going_nan_while_the_loss_stays_finite(keras_seed):
    """A hand-written norm penalty, sqrt(sum(h^2)), on a ReLU layer whose units are dead:
    its value is 0 but its gradient NaN, so the step's loss is finite and the weights are not."""
    x = features(rows=64)
    inputs = keras.Input((8,))
    hidden = keras.layers.Dense(4, activation="relu", kernel_initializer="zeros", name="dead_relu")(inputs)
    prediction = keras.layers.Dense(1, name="prediction")(hidden)
    model = keras.Model(inputs, [prediction, hidden])
    penalty = lambda y_true, y_pred: keras.ops.mean(keras.ops.sqrt(keras.ops.sum(y_pred * y_pred, -1)))  # noqa: E731
    model.compile(keras.optimizers.RMSprop(0.01), loss=["mse", penalty])
    monitor = fit(model, x, [x[:, :1], np.zeros((64, 4))], Monitor(every_n_steps=1, verbose=0), batch_size=8)
    (finding,) = by_code(monitor, "ND702")
    assert finding.details["step"] == 1 and np.isfinite(finding.details["loss"])
    assert "dead_relu/kernel" in finding.details["variables"] and "the loss is still finite" in finding.message
