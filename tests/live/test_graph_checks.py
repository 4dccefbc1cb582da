"""Graph checks on hand-written numerics in live models (ND201, ND202, ND203): the same
judgements on TensorFlow's graph and on JAX's jaxpr (the tests marked every_backend run on both)."""

import keras
import pytest

import nandoctor
from nandoctor.live.graph_checks import GraphChecks

# PyTorch gives no graph to read: there the report says the graph checks did not run
# (tests/live/test_every_backend.py).
pytestmark = pytest.mark.skipif(
    keras.backend.backend() not in GraphChecks.backends,
    reason=f"the graph checks do not run on {keras.backend.backend()}",
)


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
    findings = [
        f
        for f in nandoctor.check(two_tower(lambda p: keras.ops.log(keras.ops.softmax(p[0])))).findings
        if f.code.startswith("ND2")
    ]
    (finding,) = findings  # the probe's failure confirms the log, not a division
    assert (
        finding.code == "ND203"
        and "log_softmax" in finding.message
        and finding.details["operation"].lower().endswith("log")
    )
    assert finding.confidence == "high" and finding.details["probe"]["recipe"] == "inputs of magnitude 1e12"


@pytest.mark.every_backend
@pytest.mark.parametrize(
    "function",
    [
        lambda p: (
            keras.ops.sum(p[0] * p[1], -1)
            / (
                keras.ops.sqrt(keras.ops.sum(p[0] * p[0], -1) + 1e-12)
                * keras.ops.sqrt(keras.ops.sum(p[1] * p[1], -1) + 1e-12)
            )
        ),
        lambda p: keras.ops.log(keras.ops.softmax(p[0]) + 1e-7),
        lambda p: p[0] / keras.ops.exp(p[1]),
    ],
    ids=["epsilon inside the roots", "log with epsilon", "division by exp"],
)
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
    findings = [
        f
        for f in nandoctor.check(keras.Model([a, b], keras.layers.Dot(axes=1, normalize=True)([x, b]))).findings
        if f.code.startswith("ND2")
    ]
    assert not [f for f in findings if "operation" in f.details]  # nothing read from the graph
    if keras.backend.backend() == "jax":
        (measured,) = findings
        assert measured.code == "ND202" and "all-zero inputs" in measured.message
    else:
        assert findings == []


@pytest.mark.every_backend
@pytest.mark.parametrize(
    "function, code",
    [
        (lambda p: keras.ops.power(keras.ops.sum(p[0] * p[0], -1), 0.5), "ND202"),
        (lambda p: keras.ops.power(keras.ops.sum(p[0] * p[0], -1), -1.0), "ND201"),
        (lambda p: keras.ops.arccos(keras.ops.sum(p[0] * p[1], -1)), "ND202"),
    ],
    ids=["fractional power", "negative power", "arccos of a dot product"],
)
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


# Value ranges: what the graph checks prove positive or non-negative, in every dtype policy a model
# computes in. The constants are judged in that dtype: 1 - 1e-7 is 1.0 in float16 and bfloat16.
POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")


@pytest.fixture(params=POLICIES)
def policy(request):
    previous = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy(request.param)
    yield request.param
    keras.mixed_precision.set_dtype_policy(previous)


def serious_graph_codes(model):
    """ND201-ND203 at warning or above, by layer: what a user would be told to fix."""
    return sorted(
        {
            (f.code, f.layer)
            for f in nandoctor.check(model).findings
            if f.code in ("ND201", "ND202", "ND203") and f.severity != "info"
        }
    )


def on_a_dense_output(function, width=4):
    """A Lambda applying `function` to a Dense's output, in the global dtype policy."""
    inputs = keras.Input((width,))
    return keras.Model(inputs, keras.layers.Lambda(function, name="f")(keras.layers.Dense(width)(inputs)))


def sum_last(t):
    return keras.ops.sum(t, -1, keepdims=True)


def written_softmax(t):
    return keras.ops.exp(t) / sum_last(keras.ops.exp(t))


GUARDED = {
    "softmax renormalised by its sum": lambda x: keras.ops.softmax(x) / sum_last(keras.ops.softmax(x)),
    "log of softmax plus epsilon": lambda x: keras.ops.log(keras.ops.softmax(x) + 1e-7),
    "log of a written-out softmax plus epsilon": lambda x: keras.ops.log(written_softmax(x) + 1e-7),
    "division by a sum of exps": lambda x: x / sum_last(keras.ops.exp(x)),
    "division by exp": lambda x: x / keras.ops.exp(x),
    "division by x*x plus epsilon": lambda x: x / (x * x + 1e-6),
    "division by a square plus epsilon": lambda x: x / (keras.ops.square(x) + 1e-6),
    "division by abs plus epsilon": lambda x: x / (keras.ops.abs(x) + 1e-6),
    "division by sigmoid plus epsilon": lambda x: x / (keras.ops.sigmoid(x) + 1e-6),
    "division by relu plus epsilon": lambda x: x / (keras.ops.relu(x) + 1e-6),
    "division by the root of a sum of squares plus epsilon": lambda x: (
        x / keras.ops.sqrt(sum_last(keras.ops.square(x)) + 1e-6)
    ),
    "division by a mean of squares plus epsilon": lambda x: x / (keras.ops.mean(x * x, -1, keepdims=True) + 1e-6),
    "division by a max of abs plus epsilon": lambda x: x / (keras.ops.max(keras.ops.abs(x), -1, keepdims=True) + 1e-6),
    "log of a clipped sigmoid": lambda x: keras.ops.log(keras.ops.clip(keras.ops.sigmoid(x), 1e-7, 1 - 1e-7)),
    "log of maximum with epsilon": lambda x: keras.ops.log(keras.ops.maximum(x, 1e-7)),
    "log of a minimum of a maximum": lambda x: keras.ops.log(keras.ops.minimum(keras.ops.maximum(x, 1e-7), 1.0)),
    "log of a maximum of a minimum": lambda x: keras.ops.log(keras.ops.maximum(keras.ops.minimum(x, 1.0), 1e-7)),
}


@pytest.mark.every_backend
@pytest.mark.parametrize("function", GUARDED.values(), ids=GUARDED.keys())
def test_values_proved_positive_are_quiet_in_every_policy(policy, function):
    assert serious_graph_codes(on_a_dense_output(function)) == []


UNGUARDED = {
    "x over its norm": (lambda x: x / keras.ops.sqrt(sum_last(x * x)), [("ND201", "f"), ("ND202", "f")]),
    "log of a softmax": (lambda x: keras.ops.log(keras.ops.softmax(x)), [("ND203", "f")]),
    "a clamp outside the root": (
        lambda x: x / keras.ops.maximum(keras.ops.sqrt(sum_last(keras.ops.square(x))), 1e-6),
        [("ND202", "f")],
    ),
}


@pytest.mark.every_backend
@pytest.mark.parametrize("function, expected", UNGUARDED.values(), ids=UNGUARDED.keys())
def test_the_unguarded_twins_are_still_found_in_every_policy(policy, function, expected):
    assert serious_graph_codes(on_a_dense_output(function)) == expected


@pytest.mark.every_backend
def test_a_clip_ceiling_that_rounds_to_one_leaves_one_minus_it_unguarded(policy):
    """`log(1 - clip(p, 1e-7, 1 - 1e-7))` computed in float16 or bfloat16: the ceiling is 1.0 there,
    and a sigmoid that rounds to 1 gives log(0)."""
    model = on_a_dense_output(lambda x: keras.ops.log(1.0 - keras.ops.clip(keras.ops.sigmoid(x), 1e-7, 1 - 1e-7)))
    findings = [f for f in nandoctor.check(model).findings if f.code == "ND203" and f.severity != "info"]
    if policy == "float32":
        assert findings == []
    else:
        (finding,) = findings
        assert f"rounds to 1 in {policy.removeprefix('mixed_')}" in finding.message


@pytest.mark.every_backend
def test_a_dense_under_a_reduced_precision_policy_has_no_division_to_report(policy):
    """A Dense has no division. The NaN probe's inputs of 1e12 overflow float16 in it, which is
    adversarial evidence at info, never a warning about a division."""
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Dense(4, activation="relu")(inputs)))
    findings = [f for f in nandoctor.check(model).findings if f.code in ("ND201", "ND202", "ND203")]
    assert [f for f in findings if f.severity != "info" or "operation" in f.details] == []


# Keras's own losses in every form they take: class or function, from probabilities or logits.
# Each is (output units, output activation, the loss).
KERAS_LOSSES = {
    "binary from probabilities": (1, "sigmoid", lambda: keras.losses.BinaryCrossentropy()),
    "binary from logits": (1, None, lambda: keras.losses.BinaryCrossentropy(from_logits=True)),
    "binary focal from probabilities": (1, "sigmoid", lambda: keras.losses.BinaryFocalCrossentropy()),
    "binary focal from logits": (1, None, lambda: keras.losses.BinaryFocalCrossentropy(from_logits=True)),
    "categorical from probabilities": (4, "softmax", lambda: keras.losses.CategoricalCrossentropy()),
    "categorical from logits": (4, None, lambda: keras.losses.CategoricalCrossentropy(from_logits=True)),
    "categorical focal from probabilities": (4, "softmax", lambda: keras.losses.CategoricalFocalCrossentropy()),
    "categorical focal from logits": (4, None, lambda: keras.losses.CategoricalFocalCrossentropy(from_logits=True)),
    "sparse categorical from probabilities": (4, "softmax", lambda: keras.losses.SparseCategoricalCrossentropy()),
    "sparse categorical from logits": (4, None, lambda: keras.losses.SparseCategoricalCrossentropy(from_logits=True)),
    "kl divergence": (4, "softmax", lambda: keras.losses.KLDivergence()),
    "poisson on softplus": (4, "softplus", lambda: keras.losses.Poisson()),
    "squared log error on relu": (4, "relu", lambda: keras.losses.MeanSquaredLogarithmicError()),
}


def compiled_with(units, activation, loss):
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(units, activation=activation, name="out")(hidden))
    model.compile(optimizer="adam", loss=loss)
    return model


@pytest.mark.parametrize("units, activation, loss", KERAS_LOSSES.values(), ids=KERAS_LOSSES.keys())
def test_keras_losses_compiled_are_quiet_in_every_policy(policy, units, activation, loss):
    """The loss trace (TensorFlow) reads the compiled loss: under a mixed policy the output reaches
    it through a Cast, so TensorFlow's shortcut to the logits is not taken and Keras's clips are."""
    assert serious_graph_codes(compiled_with(units, activation, loss())) == []


@pytest.mark.parametrize("name", ["binary_crossentropy", "categorical_crossentropy", "kl_divergence"])
def test_a_custom_loss_that_calls_keras_losses_is_quiet_in_every_policy(policy, name):
    units, activation = (1, "sigmoid") if name.startswith("binary") else (4, "softmax")
    keras_loss = keras.losses.get(name)
    assert serious_graph_codes(compiled_with(units, activation, lambda y, p: 2.0 * keras_loss(y, p))) == []


@pytest.mark.every_backend
@pytest.mark.parametrize("units, activation, loss", KERAS_LOSSES.values(), ids=KERAS_LOSSES.keys())
def test_keras_losses_inside_a_layer_are_quiet_in_every_policy(policy, units, activation, loss):
    """A layer that computes a Keras loss on the model's output (as a VAE's does): the graph checks
    read it on TensorFlow and JAX alike, the reduction's divide_no_nan included."""
    keras_loss = loss()
    sparse = isinstance(keras_loss, keras.losses.SparseCategoricalCrossentropy)
    inputs, targets = keras.Input((6,)), keras.Input((1 if sparse else units,))
    outputs = keras.layers.Dense(units, activation=activation)(keras.layers.Dense(8, activation="relu")(inputs))
    scored = keras.layers.Lambda(lambda pair: keras_loss(pair[1], pair[0]), name="scored")([outputs, targets])
    assert serious_graph_codes(keras.Model([inputs, targets], scored)) == []


@pytest.mark.every_backend
def test_keras_binary_crossentropy_computed_in_float16_from_probabilities(policy):
    """`keras.losses.binary_crossentropy` called on float16 probabilities clips them to
    [1e-7, 1 - 1e-7], which is [1.2e-7, 1.0] in float16: a sigmoid that rounds to 1 gives
    log(1 - 1) = -inf (measured: inf on float16 and bfloat16, 13.76 in float32). TensorFlow's backend
    takes the logits beneath the sigmoid instead, JAX's takes the clipped log: found there."""
    inputs, targets = keras.Input((6,)), keras.Input((1,))
    outputs = keras.layers.Dense(1, activation="sigmoid")(keras.layers.Dense(8, activation="relu")(inputs))
    scored = keras.layers.Lambda(lambda pair: keras.losses.binary_crossentropy(pair[1], pair[0]), name="scored")(
        [outputs, targets]
    )
    found = serious_graph_codes(keras.Model([inputs, targets], scored))
    in_float16 = policy != "float32" and keras.backend.backend() == "jax"
    assert found == ([("ND203", "scored")] if in_float16 else [])


@pytest.mark.every_backend
def test_an_epsilon_that_float16_rounds_to_zero_guards_nothing(policy):
    """1e-8 is 0 in float16 (its smallest subnormal is 6e-8): `x / (x*x + 1e-8)` divides by 0 there."""
    found = serious_graph_codes(on_a_dense_output(lambda x: x / (x * x + 1e-8)))
    assert found == ([("ND201", "f")] if policy == "mixed_float16" else [])
