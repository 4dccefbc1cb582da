"""Six training runs that really diverge, of the kinds bug reports show most, each small
enough to train in seconds on a CPU. Each builds `(model, x, y, batch_size, epochs)`; a run
is deterministic for a seed (no shuffling), so a ground-truth callback and the Monitor can
watch the same run. The random weights are drawn by numpy (`same_on_every_backend`): Keras's
initializers draw from each backend's own generator, and a run must break on each."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


def _rng(seed=0):
    return np.random.default_rng(seed)


def same_on_every_backend(model, seed=0):
    """Every kernel redrawn Glorot-uniform by numpy; biases and given tables kept."""
    rng = _rng(seed)
    for weight in model.weights:
        shape = tuple(weight.shape)
        if len(shape) < 2 or weight.name == "embeddings":
            continue
        receptive = int(np.prod(shape[:-2]))
        limit = np.sqrt(6.0 / (receptive * (shape[-2] + shape[-1])))
        weight.assign(rng.uniform(-limit, limit, shape).astype("float32"))
    return model


def dying_relu_output():
    """A ReLU output under a hand-written cross-entropy (field report A's output, with the loss
    as users write it): training pushes the true class's unit of an input to exactly zero,
    and its log-probability is log(0)."""
    x = _rng().normal(size=(512, 8)).astype("float32")
    y = keras.utils.to_categorical(_rng(1).integers(0, 4, 512), 4)
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16, activation="relu", name="hidden"),
            keras.layers.Dense(4, activation="relu", name="output", bias_initializer=keras.initializers.Constant(3.0)),
        ]
    )

    def cross_entropy(y_true, outputs):
        probabilities = outputs / ops.sum(outputs, -1, keepdims=True)
        return -ops.mean(ops.sum(y_true * ops.log(probabilities), -1))

    model.compile(keras.optimizers.SGD(0.5), cross_entropy)
    return same_on_every_backend(model), x, y, 16, 1


def learning_rate_overflow():
    """Linear regression with a learning rate far past the stable step: the weights grow by
    a constant factor per step until they overflow float32."""
    x = _rng().normal(size=(2048, 8)).astype("float32")
    y = x @ np.ones((8, 1), "float32")
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1, name="regression")])
    model.compile(keras.optimizers.SGD(4.0), "mse")
    return same_on_every_backend(model), x, y, 32, 1


def log_of_underflowed_probability():
    """A hand-written binary cross-entropy on a sigmoid: the logits grow on separable data
    until the sigmoid rounds to exactly 1.0, and log(1 - p) is log(0)."""
    x = _rng().normal(size=(1024, 8)).astype("float32")
    y = (x[:, :1] > 0).astype("float32")
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1, activation="sigmoid", name="classifier")])

    def cross_entropy(y_true, p):
        return -ops.mean(y_true * ops.log(p) + (1 - y_true) * ops.log(1 - p))

    model.compile(keras.optimizers.SGD(5.0), cross_entropy)
    return same_on_every_backend(model), x, y, 16, 1


def sqrt_at_zero_distance():
    """A Siamese distance written as sqrt(sum((a - b)^2)), unclamped: the forward value is 0
    for a pair of identical inputs, and its gradient is 0 * inf = NaN."""
    rng = _rng()
    a = rng.normal(size=(640, 8)).astype("float32")
    b = rng.normal(size=(640, 8)).astype("float32")
    b[200] = a[200]  # one identical pair, in batch 13 (16 pairs a batch)
    same = rng.integers(0, 2, (640, 1)).astype("float32")
    left, right = keras.Input((8,)), keras.Input((8,))
    encode = keras.layers.Dense(8, name="encoder")
    distance = keras.layers.Lambda(
        lambda pair: ops.sqrt(ops.sum(ops.square(pair[0] - pair[1]), -1, keepdims=True)), name="distance"
    )([encode(left), encode(right)])
    model = keras.Model([left, right], distance)

    def contrastive(y_true, d):
        return ops.mean(y_true * ops.square(d) + (1 - y_true) * ops.square(ops.maximum(1.0 - d, 0.0)))

    model.compile(keras.optimizers.SGD(0.01), contrastive)
    return same_on_every_backend(model), [a, b], same, 16, 1


def zero_rows_under_a_norm():
    """Field report C: embedding tables with zero rows under a hand-written cosine,
    a max-margin loss as the model's output, Adam."""
    from tests.monitor.test_monitor import report_c_model

    model, inputs = report_c_model(_rng())
    return same_on_every_backend(model), inputs, np.zeros((64, 1), "float32"), 8, 1


def decay_until_features_vanish():
    """Weight decay shrinks a ReLU layer's kernel geometrically; its bias, pulled below zero,
    takes over, until a feature vector is exactly zero and its hand-written normalisation is
    0 / 0. The kernel is nowhere near underflow when that happens."""
    rng = _rng()
    x = rng.normal(size=(4096, 8)).astype("float32")
    y = rng.normal(size=(4096, 8)).astype("float32")
    inputs = keras.Input((8,))
    features = keras.layers.Dense(
        8,
        activation="relu",
        name="features",
        kernel_regularizer=keras.regularizers.L2(0.2),
        bias_initializer=keras.initializers.Constant(-0.05),
    )(inputs)
    unit = keras.layers.Lambda(lambda h: h / ops.sqrt(ops.sum(ops.square(h), -1, keepdims=True)), name="normalise")(
        features
    )
    model = keras.Model(inputs, unit)
    model.compile(keras.optimizers.SGD(0.05), "mse")
    return same_on_every_backend(model), x, y, 8, 1


DIVERGENCES = {
    run.__name__: run
    for run in (
        dying_relu_output,
        learning_rate_overflow,
        log_of_underflowed_probability,
        sqrt_at_zero_distance,
        zero_rows_under_a_norm,
        decay_until_features_vanish,
    )
}


class FirstNonfinite(keras.callbacks.Callback):
    """The ground truth: every weight pulled to the host at every step (what the Monitor
    avoids), noting the first step at which a weight, and the loss, is non-finite. A run may
    break in its loss only: on JAX, ReLU's gradient selects 0 where TensorFlow's multiplies
    a NaN into the weights."""

    def __init__(self):
        super().__init__()
        self.weights_step = self.loss_step = None

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        if self.weights_step is None and not all(np.isfinite(w).all() for w in self.model.get_weights()):
            self.weights_step = step
        loss = (logs or {}).get("loss")
        if self.loss_step is None and loss is not None and not np.isfinite(loss):
            self.loss_step = step

    @property
    def first_step(self) -> int | None:
        """The first step at which a weight or the loss was non-finite."""
        steps = [step for step in (self.weights_step, self.loss_step) if step is not None]
        return min(steps) if steps else None
