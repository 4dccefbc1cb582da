"""The auxiliary losses of deep character transformers (Al-Rfou et al., 2018)."""

from __future__ import annotations

import keras
from keras import ops

from nandoctor.live.model_layers import every_layer


@keras.saving.register_keras_serializable(package="nandoctor")
class AuxiliaryLosses(keras.layers.Layer):
    """Adds, with `add_loss`, the three auxiliary losses of a deep character model built
    from `n` stacked `CausalSelfAttention` blocks, and returns the final prediction.

    1. Every position predicts the next character, not only the last one.
    2. Every block `l` (1-based) predicts too; block `l < n` stops contributing once
       `l / (2n)` of training has passed (the final block always counts).
    3. Each position also predicts characters further ahead, each such loss weighted by
       `future_weight` (0.5 in the paper).

    The losses are summed, in float32 whatever the dtype policy. Training progress (0 to 1) lives in the non-trainable weight
    `progress`, which `AuxiliaryLossSchedule` advances at every batch; without it,
    progress stays 0 and every block contributes.

    Args:
        num_blocks: `n`, the number of blocks that make predictions.
        horizon: how many characters ahead each position predicts (1 = next only).
            Defaults to `2`.
        future_weight: weight of each loss beyond the next character. Defaults to `0.5`.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`, such as `name`.

    Call arguments:
        inputs: `[targets, predictions]`. `targets`: integer ids of shape
            `(batch, length + horizon - 1)`, where `targets[:, t + k]` is the character
            `k + 1` steps after position `t` (for a window `ids` of `length + horizon`
            characters, `targets = ids[:, 1:]`). `predictions`: a list over blocks of
            lists over `k = 0 .. horizon - 1` of logits `(batch, length, vocabulary)`.

    Returns:
        The final block's next-character logits, `predictions[-1][0]`.

    Example:
    ```python
    length = 32
    window = keras.Input((length + 2,), dtype="int32")  # 2 = horizon
    x = keras.layers.Embedding(27, 64)(window[:, :length])
    predictions = []
    for _ in range(4):
        x = nandoctor.layers.CausalSelfAttention(num_heads=4, intermediate_dim=256)(x)
        predictions.append([keras.layers.Dense(27)(x), keras.layers.Dense(27)(x)])
    logits = nandoctor.layers.AuxiliaryLosses(num_blocks=4)([window[:, 1:], predictions])
    model = keras.Model(window, logits)
    model.compile("adam")  # every loss is added by the layer
    windows = np.random.randint(0, 27, size=(64, length + 2))
    model.fit(windows, epochs=1, callbacks=[nandoctor.layers.AuxiliaryLossSchedule()])
    ```

    Reference: [Al-Rfou et al., 2018](https://arxiv.org/abs/1808.04444), section 2.
    """

    def __init__(self, num_blocks, horizon=2, future_weight=0.5, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(num_blocks, int) or num_blocks <= 0:
            raise ValueError(f"`num_blocks` must be a positive integer. Received: num_blocks={num_blocks}")
        if not isinstance(horizon, int) or horizon <= 0:
            raise ValueError(f"`horizon` must be a positive integer. Received: horizon={horizon}")
        self.num_blocks = num_blocks
        self.horizon = horizon
        self.future_weight = future_weight

    def build(self, input_shape):
        self.progress = self.add_weight(name="progress", shape=(), initializer="zeros", trainable=False)

    def block_weight(self, block: int):
        """1.0 while block `block` (1-based) still counts at the current progress, else 0.0."""
        if block == self.num_blocks:
            return ops.convert_to_tensor(1.0)
        return ops.cast(ops.less(self.progress, block / (2 * self.num_blocks)), "float32")

    def call(self, inputs):
        targets, predictions = inputs
        if len(predictions) != self.num_blocks or any(len(p) != self.horizon for p in predictions):
            raise ValueError(
                f"Expected predictions for {self.num_blocks} blocks x {self.horizon} offsets. "
                f"Received: {len(predictions)} blocks"
            )
        length = ops.shape(predictions[0][0])[1]
        total = 0.0
        for block, block_predictions in enumerate(predictions, start=1):
            for offset, logits in enumerate(block_predictions):
                target = ops.slice(targets, (0, offset), (ops.shape(targets)[0], length))
                # In float32, as Keras's compiled losses take float16 or bfloat16 outputs: a float16
                # loss loses its small terms, and could not be added to the float32 block weight.
                loss = ops.mean(
                    keras.losses.sparse_categorical_crossentropy(target, ops.cast(logits, "float32"), from_logits=True)
                )
                weight = 1.0 if offset == 0 else self.future_weight
                total = total + weight * self.block_weight(block) * loss
        self.add_loss(total)
        return predictions[-1][0]

    def get_config(self):
        config = super().get_config()
        config.update({"num_blocks": self.num_blocks, "horizon": self.horizon, "future_weight": self.future_weight})
        return config


class AuxiliaryLossSchedule(keras.callbacks.Callback):
    """Advances the `progress` of every `AuxiliaryLosses` layer in the model at each batch,
    from 0 at the first batch to 1 at the end of `fit` (`total_steps`, or epochs x steps)."""

    def __init__(self, total_steps=None):
        super().__init__()
        self.total_steps = total_steps
        self._layers = []
        self._step = 0

    def on_train_begin(self, logs=None):
        self._layers = [layer for layer in every_layer(self.model) if isinstance(layer, AuxiliaryLosses)]
        if not self._layers:
            raise ValueError("AuxiliaryLossSchedule found no AuxiliaryLosses layer in the model.")
        if self.total_steps is None:
            steps, epochs = self.params.get("steps"), self.params.get("epochs")
            if not steps or not epochs:
                raise ValueError("Pass `total_steps`: fit() did not say how many steps it will take.")
            self.total_steps = steps * epochs
        self._step = 0

    def on_train_batch_begin(self, batch, logs=None):
        for layer in self._layers:
            layer.progress.assign(min(self._step / self.total_steps, 1.0))
        self._step += 1
