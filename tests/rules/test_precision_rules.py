"""The reduced-precision rules (ND801-ND806) on real Keras models saved under mixed_float16,
mixed_bfloat16 and plain float16/bfloat16 policies, in .keras and legacy .h5, and the facts they
rest on measured by real runs."""

import contextlib

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nandoctor
from nandoctor.analysis.precision import FLOAT_FORMATS, layer_policy
from nandoctor.report import Severity

FORMATS = ("keras", "h5")


@contextlib.contextmanager
def global_policy(keras, name):
    previous = keras.config.dtype_policy().name
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def precision_findings(path_or_report):
    report = nandoctor.scan(path_or_report) if isinstance(path_or_report, str) else path_or_report
    return [f for f in report.findings if f.code.startswith("ND8")]


def summary(findings):
    return [(f.code, f.severity, f.layer, f.details["evidence"]) for f in findings]


# The formats the rules judge, against numpy's float16 and ml_dtypes' bfloat16.
@given(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_subnormal=True))
def test_float_formats_round_as_numpy_and_ml_dtypes_do(value):
    with np.errstate(over="ignore"):  # numpy's own float16 overflows to inf: the value compared
        assert FLOAT_FORMATS["float16"].rounded(value) == float(np.float16(value))
        assert FLOAT_FORMATS["bfloat16"].rounded(value) == float(np.float32(value).astype(ml_dtypes.bfloat16))
        assert FLOAT_FORMATS["float16"].rounds_to_zero(value) == (value != 0 and np.float16(value) == 0)


def test_saved_policies_are_read_from_keras_3_and_keras_2_configs():
    keras3 = {"dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "mixed_float16"}}}
    keras2 = {"dtype": {"class_name": "Policy", "config": {"name": "mixed_bfloat16"}}}
    quantized = {
        "dtype": {"class_name": "QuantizedDTypePolicy", "config": {"mode": "int8", "source_name": "mixed_bfloat16"}}
    }
    assert (layer_policy(keras3).compute, layer_policy(keras3).variable) == ("float16", "float32")
    assert (layer_policy(keras2).compute, layer_policy(keras2).variable) == ("bfloat16", "float32")
    assert (layer_policy({"dtype": "bfloat16"}).compute, layer_policy({"dtype": "bfloat16"}).variable) == (
        "bfloat16",
        "bfloat16",
    )
    assert (layer_policy(quantized).quantized, layer_policy(quantized).compute) == ("int8", "bfloat16")
    assert layer_policy({}) is None


# ND801 epsilon-below-resolution


def t5_norm_model(keras, epsilon, policy="mixed_float16"):
    from keras_hub.src.models.t5.t5_layer_norm import T5LayerNorm

    return keras.Sequential([keras.Input((8,)), T5LayerNorm(epsilon=epsilon, dtype=policy, name="norm")])


@pytest.mark.parametrize("suffix", FORMATS)
def test_an_epsilon_float16_rounds_to_zero_in_a_norm_that_adds_it_in_float16_is_an_error(keras, save, suffix):
    findings = precision_findings(save(t5_norm_model(keras, 1e-8), f"m.{suffix}"))
    assert summary(findings) == [("ND801", Severity.ERROR, "norm", "certain")]
    assert findings[0].details["compute_dtype"] == "float16" and findings[0].details["epsilon"] == 1e-8


def test_that_epsilon_really_gives_nan_on_a_zero_row_and_the_fixed_one_does_not(keras):
    rows = np.zeros((2, 8), "float32")
    rows[1] = np.arange(8)
    broken = np.asarray(t5_norm_model(keras, 1e-8)(rows), "float32")
    fixed = np.asarray(t5_norm_model(keras, 1e-6)(rows), "float32")
    assert np.isnan(broken[0]).all() and np.isfinite(broken[1]).all()
    assert np.isfinite(fixed).all()


def test_the_fixed_epsilon_and_the_same_epsilon_in_bfloat16_are_fine(keras, save):
    assert precision_findings(save(t5_norm_model(keras, 1e-6), "fixed.keras")) == []
    assert precision_findings(save(t5_norm_model(keras, 1e-12, "mixed_bfloat16"), "bf16.keras")) == []


@pytest.mark.parametrize("suffix", FORMATS)
def test_keras_own_normalisations_add_epsilon_in_float32_and_are_not_reported(keras, save, suffix):
    with global_policy(keras, "mixed_float16"):
        inputs = keras.Input((4, 4, 8))
        x = keras.layers.BatchNormalization(epsilon=1e-12)(inputs)
        x = keras.layers.GroupNormalization(groups=2, epsilon=1e-12)(x)
        x = keras.layers.LayerNormalization(epsilon=1e-12)(x)
        x = keras.layers.RMSNormalization(epsilon=1e-12)(x)
        model = keras.Model(inputs, x)
    assert np.isfinite(np.asarray(model(np.zeros((1, 4, 4, 8), "float32")), "float32")).all()
    assert precision_findings(save(model, f"m.{suffix}")) == []


def test_a_custom_layer_epsilon_is_inferred_and_only_info(keras, save):
    @keras.saving.register_keras_serializable("precision_test")
    class ScaleNorm(keras.layers.Layer):
        def __init__(self, epsilon=1e-6, **kwargs):
            super().__init__(**kwargs)
            self.epsilon = epsilon

        def call(self, x):
            return x / keras.ops.sqrt(keras.ops.mean(x * x, axis=-1, keepdims=True) + self.epsilon)

        def get_config(self):
            return {**super().get_config(), "epsilon": self.epsilon}

    model = keras.Sequential([keras.Input((8,)), ScaleNorm(epsilon=1e-10, dtype="mixed_float16", name="scale_norm")])
    assert summary(precision_findings(save(model, "m.keras"))) == [("ND801", Severity.INFO, "scale_norm", "inferred")]


# ND802 missing-loss-scaling


def small_regressor(keras, **dense):
    return keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(8, activation="relu", name="hidden", **dense),
            keras.layers.Dense(1, dtype="float32", name="out"),
        ]
    )


def test_float16_layers_in_a_float32_model_train_without_loss_scaling_in_h5(keras, save):
    model = small_regressor(keras, dtype="mixed_float16")
    model.compile(keras.optimizers.Adam(), loss="mse")
    assert type(model.optimizer).__name__ == "Adam"  # Keras wraps only under a mixed_float16 model
    findings = precision_findings(save(model, "m.h5"))
    assert summary(findings) == [("ND802", Severity.WARNING, "hidden", "certain")]
    assert findings[0].details["optimizer"] == "Adam"


def test_auto_scale_loss_false_under_a_mixed_float16_model_is_found_in_h5(keras, save):
    with global_policy(keras, "mixed_float16"):
        model = small_regressor(keras)
        model.compile(keras.optimizers.Adam(), loss="mse", auto_scale_loss=False)
    assert [f.code for f in precision_findings(save(model, "m.h5"))] == ["ND802"]


def test_keras_own_loss_scaling_is_seen_in_h5(keras, save):
    with global_policy(keras, "mixed_float16"):
        model = small_regressor(keras)
        model.compile(keras.optimizers.Adam(), loss="mse")
    assert type(model.optimizer).__name__ == "LossScaleOptimizer"
    assert precision_findings(save(model, "m.h5")) == []


def test_a_keras_archive_does_not_record_the_model_policy_so_a_plain_optimizer_is_info(keras, save):
    model = small_regressor(keras, dtype="mixed_float16")
    model.compile(keras.optimizers.Adam(), loss="mse")
    assert summary(precision_findings(save(model, "m.keras"))) == [("ND802", Severity.INFO, "hidden", "inferred")]
    wrapped = small_regressor(keras, dtype="mixed_float16")
    wrapped.compile(keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam()), loss="mse")
    assert precision_findings(save(wrapped, "wrapped.keras")) == []


@pytest.mark.parametrize("suffix", FORMATS)
def test_bfloat16_needs_no_loss_scaling(keras, save, suffix):
    model = small_regressor(keras, dtype="mixed_bfloat16")
    model.compile(keras.optimizers.Adam(), loss="mse")
    assert precision_findings(save(model, f"m.{suffix}")) == []


# ND803 half-precision-output


def classifier(keras, policy, fixed=False):
    layers = [keras.Input((8,)), keras.layers.Dense(16, activation="relu", dtype=policy)]
    if fixed:
        layers += [
            keras.layers.Dense(4, dtype=policy),
            keras.layers.Activation("softmax", dtype="float32", name="probs"),
        ]
    else:
        layers += [keras.layers.Dense(4, activation="softmax", dtype=policy, name="probs")]
    return keras.Sequential(layers)


@pytest.mark.parametrize("suffix", FORMATS)
def test_a_softmax_output_in_float16_is_a_warning(keras, save, suffix):
    findings = precision_findings(save(classifier(keras, "mixed_float16"), f"m.{suffix}"))
    assert summary(findings) == [("ND803", Severity.WARNING, "probs", "certain")]
    assert findings[0].details["activation"] == "softmax"


@pytest.mark.parametrize("suffix", FORMATS)
def test_the_guide_float32_softmax_and_a_bfloat16_softmax_are_fine(keras, save, suffix):
    assert precision_findings(save(classifier(keras, "mixed_float16", fixed=True), f"fixed.{suffix}")) == []
    assert precision_findings(save(classifier(keras, "mixed_bfloat16"), f"bf16.{suffix}")) == []


def test_float16_logits_read_by_a_loss_are_info(keras, save):
    with global_policy(keras, "mixed_float16"):
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, name="logits")])
        model.compile(
            keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam()),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
    assert summary(precision_findings(save(model, "m.keras"))) == [("ND803", Severity.INFO, "logits", "certain")]


# ND804 frozen-low-precision-updates


def linear_model(keras, policy, optimizer):
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1, dtype=policy, name="dense")])
    model.compile(optimizer, loss="mse", auto_scale_loss=False)
    return model


# Keras's legacy .h5 writer stores bfloat16 variables as opaque 2-byte values, which the .h5
# loader does not read yet: bfloat16 variables are judged in .keras archives here.
def test_bfloat16_variables_under_adam_default_beta_2_are_an_error(keras, save):
    findings = precision_findings(save(linear_model(keras, "bfloat16", keras.optimizers.Adam()), "m.keras"))
    assert summary(findings) == [("ND804", Severity.ERROR, "dense", "certain")]
    assert findings[0].details["beta_2"] == 0.999 and "every step is exactly 0" in findings[0].message


def fit_changes(keras, policy, optimizer, zero_column=False):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 8)).astype("float32")
    if zero_column:
        x[:, 0] = 0.0
    y = x @ rng.normal(size=(8, 1)).astype("float32")
    keras.utils.set_random_seed(0)
    model = linear_model(keras, policy, optimizer)
    before = np.asarray(model.get_layer("dense").kernel, "float32").copy()
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    after = np.asarray(model.get_layer("dense").kernel, "float32")
    return int((after != before).sum()), int(np.isnan(after).sum()), history.history["loss"]


def test_bfloat16_adam_really_freezes_every_weight_and_mixed_bfloat16_does_not(keras):
    changed, _, losses = fit_changes(keras, "bfloat16", keras.optimizers.Adam())
    assert changed == 0 and losses[0] == losses[1]
    changed, _, losses = fit_changes(keras, "mixed_bfloat16", keras.optimizers.Adam())
    assert changed == 8 and losses[1] < losses[0]


@pytest.mark.parametrize("suffix", FORMATS)
def test_float16_variables_with_an_epsilon_float16_cannot_hold_are_an_error(keras, save, suffix):
    findings = precision_findings(
        save(linear_model(keras, "float16", keras.optimizers.Adam(epsilon=1e-8)), f"m.{suffix}")
    )
    (frozen,) = [f for f in findings if f.code == "ND804"]
    assert (frozen.severity, frozen.details["epsilon"]) == (Severity.ERROR, 1e-8)
    # A plain float16 policy computes in float16 too: no loss scaling, and a float16 output.
    assert sorted(f.code for f in findings) == ["ND802", "ND803", "ND804"]


def test_that_epsilon_really_divides_zero_by_zero_for_a_weight_without_gradient(keras):
    _, nans, _ = fit_changes(keras, "float16", keras.optimizers.Adam(epsilon=1e-8), zero_column=True)
    assert nans > 0
    _, nans, _ = fit_changes(keras, "float16", keras.optimizers.Adam(epsilon=1e-7), zero_column=True)
    assert nans == 0


def test_bfloat16_steps_below_the_spacing_of_one_are_a_warning(keras, save):
    model = linear_model(keras, "bfloat16", keras.optimizers.Adam(learning_rate=1e-3, beta_2=0.99))
    (finding,) = precision_findings(save(model, "m.keras"))
    assert (finding.code, finding.severity) == ("ND804", Severity.WARNING)
    assert finding.details["frozen_above"] == 0.5


def test_bfloat16_adam_with_a_beta_2_it_holds_moves_only_the_values_below_the_frozen_magnitude(keras):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 8)).astype("float32")
    y = x @ rng.normal(size=(8, 1)).astype("float32")
    keras.utils.set_random_seed(0)
    model = linear_model(keras, "bfloat16", keras.optimizers.Adam(learning_rate=1e-3, beta_2=0.99))
    before = np.asarray(model.get_layer("dense").kernel, "float32").copy()
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    moved = np.asarray(model.get_layer("dense").kernel, "float32") != before
    assert not moved[np.abs(before) > 0.5].any() and moved.any()


def test_float32_master_weights_and_other_optimizers_are_fine(keras, save):
    assert precision_findings(save(linear_model(keras, "mixed_bfloat16", keras.optimizers.Adam()), "mixed.keras")) == []
    assert precision_findings(save(linear_model(keras, "bfloat16", keras.optimizers.SGD()), "sgd.keras")) == []
    assert (
        precision_findings(save(linear_model(keras, "float32", keras.optimizers.Adam(epsilon=1e-8)), "f32.keras")) == []
    )


# ND805 overflow-headroom


def dense_with_weight(keras, policy, value):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, dtype=policy, name="dense")])
    kernel, bias = model.get_layer("dense").get_weights()
    kernel[0, 0] = value
    model.get_layer("dense").set_weights([kernel, bias])
    return model


@pytest.mark.parametrize("suffix", FORMATS)
def test_weights_beyond_and_near_float16_max_are_error_and_warning(keras, save, suffix):
    (over,) = precision_findings(save(dense_with_weight(keras, "mixed_float16", 1e5), f"over.{suffix}"))
    (near,) = precision_findings(save(dense_with_weight(keras, "mixed_float16", 5000.0), f"near.{suffix}"))
    assert (over.code, over.severity, over.layer, over.details["max_abs"]) == ("ND805", Severity.ERROR, "dense", 1e5)
    assert (near.code, near.severity, near.details["max_abs"]) == ("ND805", Severity.WARNING, 5000.0)


def test_a_weight_above_65504_really_makes_the_float16_layer_output_non_finite(keras):
    ones = np.ones((1, 4), "float32")
    assert not np.isfinite(np.asarray(dense_with_weight(keras, "mixed_float16", 1e5)(ones), "float32")).all()
    assert np.isfinite(np.asarray(dense_with_weight(keras, "float32", 1e5)(ones), "float32")).all()


def test_the_same_weights_under_float32_or_bfloat16_are_fine(keras, save):
    assert precision_findings(save(dense_with_weight(keras, "float32", 1e5), "f32.keras")) == []
    assert precision_findings(save(dense_with_weight(keras, "mixed_bfloat16", 1e5), "bf16.keras")) == []


def test_batch_normalization_statistics_are_read_in_float32(keras, save):
    with global_policy(keras, "mixed_float16"):
        model = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization(name="bn")])
    mean, variance = model.get_layer("bn").moving_mean, model.get_layer("bn").moving_variance
    variance.assign(np.full(variance.shape, 1e6, "float32"))
    assert mean is not None and precision_findings(save(model, "m.keras")) == []


# ND806 broken-quantization-scales


def quantized(keras, policy="float32"):
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, dtype=policy, name="dense")])
    model.quantize("int8")
    return model


@pytest.mark.parametrize("bad,label", [(0.0, "zero"), (np.inf, "inf"), (1e-38, "overflowing")])
def test_broken_scales_of_an_int8_layer_are_an_error(keras, save, bad, label):
    model = quantized(keras, "mixed_bfloat16")
    scale = model.get_layer("dense").kernel_scale
    values = np.asarray(scale).copy()
    values[1] = bad
    scale.assign(values)
    findings = precision_findings(save(model, "m.keras"))
    assert [(f.code, f.severity, f.layer, f.details[label]) for f in findings] == [
        ("ND806", Severity.ERROR, "dense", 1)
    ]
    live = precision_findings(nandoctor.check(model, probes=False))
    assert [(f.code, f.details[label]) for f in live] == [("ND806", 1)]
    # What the layer computes in that output column: inf or NaN for a zero scale, 0 for an
    # infinite one, inf for one that stands for weights beyond the compute dtype.
    column = np.asarray(model(np.ones((1, 8), "float32")), "float32")[0, 1]
    assert (column == 0) if label == "inf" else not np.isfinite(column)


def test_a_freshly_quantized_model_is_fine(keras, save):
    assert precision_findings(save(quantized(keras), "m.keras")) == []
    assert precision_findings(save(quantized(keras, "mixed_bfloat16"), "bf16.keras")) == []


def test_check_on_a_live_model_sees_the_same_policies(keras):
    assert [f.code for f in precision_findings(nandoctor.check(t5_norm_model(keras, 1e-8), probes=False))] == ["ND801"]
    assert [f.code for f in precision_findings(nandoctor.check(classifier(keras, "mixed_float16"), probes=False))] == [
        "ND803"
    ]
    assert precision_findings(nandoctor.check(classifier(keras, "mixed_float16", fixed=True), probes=False)) == []


def test_a_keras_2_h5_under_mixed_float16_is_read_with_its_loss_scale_optimizer(tf_keras, save):
    tf_keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = tf_keras.Sequential(
            [
                tf_keras.Input((8,)),
                tf_keras.layers.Dense(8, activation="relu"),
                tf_keras.layers.Dense(4, activation="softmax", name="probs"),
            ]
        )
        model.compile("adam", loss="sparse_categorical_crossentropy")
    finally:
        tf_keras.mixed_precision.set_global_policy("float32")
    # tf.keras wrapped Adam in its LossScaleOptimizerV3 (no ND802); the softmax is float16.
    assert summary(precision_findings(save(model, "m.h5"))) == [("ND803", Severity.WARNING, "probs", "certain")]
