"""ND702 prescribes for what the replay's culprit computes: the graph checks read the layer
that made the first NaN and give the cure for its division, not one fix for every cause."""

import keras
import numpy as np
import pytest

from nandoctor.live.unguarded_division import MASKED_MEAN_FIX, NORM_FIX
from nandoctor.monitor import Monitor
from tests.monitor.test_monitor import by_code

pytestmark = pytest.mark.skipif(keras.backend.backend() == "torch", reason="the graph checks read no PyTorch graph")


def norm(t):
    return keras.ops.sqrt(keras.ops.sum(t * t, -1, keepdims=True))


def nd702(model, x, y):
    monitor = Monitor(sample=(x, y), verbose=0)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[monitor])
    (finding,) = by_code(monitor, "ND702")
    return finding


def test_a_norm_division_that_made_the_nan_is_prescribed_a_safe_norm(keras_seed):
    features = keras.Input((4,))
    unit = keras.layers.Lambda(lambda t: t / norm(t), name="normalise")(features)
    model = keras.Model(features, keras.layers.Dense(1)(unit))
    model.compile("sgd", "mse")
    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    x[3] = 0.0  # a row of zeros: 0 / 0
    finding = nd702(model, x, np.zeros((16, 1), "float32"))
    assert finding.layer == "normalise" and finding.fix == NORM_FIX


def test_a_masked_mean_over_an_empty_text_is_prescribed_a_floored_count(keras_seed):
    tokens = keras.Input((6,), dtype="int32")
    vectors = keras.layers.Embedding(20, 4)(tokens)
    mask = keras.ops.cast(keras.ops.not_equal(tokens, 0), "float32")[..., None]
    mean = keras.layers.Lambda(lambda p: keras.ops.sum(p[0] * p[1], 1) / keras.ops.sum(p[1], 1), name="mean")(
        [vectors, mask]
    )
    model = keras.Model(tokens, keras.layers.Dense(1)(mean))
    model.compile("sgd", "mse")
    x = np.random.default_rng(0).integers(1, 20, size=(16, 6)).astype("int32")
    x[5] = 0  # an empty text, all padding
    finding = nd702(model, x, np.zeros((16, 1), "float32"))
    assert finding.layer == "mean" and finding.fix == MASKED_MEAN_FIX
