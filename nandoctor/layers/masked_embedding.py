"""An embedding whose padding positions are exactly zero and stay so."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="nandoctor")
class MaskedEmbedding(keras.layers.Embedding):
    """An `Embedding` whose output at padding positions (`id == mask_id`) is exactly zero,
    whose padding row takes no gradient and stays zero through training, and which emits
    the padding mask for the layers after it.

    A plain `Embedding(mask_zero=True)` emits the mask but still outputs its (trained,
    non-zero) padding row; a layer that drops the mask (Flatten, Conv1D, a Lambda) then
    sums or concatenates padding vectors into the features, and a long zero-padded
    document becomes mostly padding (field report D: 20 Newsgroups sat at chance for four
    epochs). Here the padding positions contribute exactly nothing, even after the mask
    is dropped. Fixes `ND301` padding-not-masked, `ND302` mask-dropped and `ND303`
    padding-row-not-zero.

    Args:
        input_dim: size of the vocabulary (largest id + 1).
        output_dim: size of each vector.
        mask_id: the padding id. Defaults to `0`.
        **kwargs: other keyword arguments passed to `keras.layers.Embedding`
            (`embeddings_initializer`, `name`, ...), except `mask_zero`: this layer always
            masks `mask_id`.

    Call arguments:
        inputs: integer ids of any shape. The output has one more axis, of `output_dim`.

    Example:
    ```python
    tokens = keras.Input((1100,), dtype="int32")
    x = nandoctor.layers.MaskedEmbedding(20000, 300)(tokens)
    x = keras.layers.Flatten()(x)  # drops the mask, but padding is already exactly zero
    outputs = keras.layers.Dense(20, activation="softmax")(x)
    ```
    """

    def __init__(self, input_dim, output_dim, mask_id=0, **kwargs):
        if "mask_zero" in kwargs:
            raise ValueError(
                "MaskedEmbedding always masks `mask_id`; it takes no `mask_zero`. "
                f"Received: mask_zero={kwargs['mask_zero']}"
            )
        if not isinstance(mask_id, int) or not 0 <= mask_id < input_dim:
            raise ValueError(f"`mask_id` must be an id in [0, input_dim). Received: mask_id={mask_id}")
        # Embedding builds and sets `weights` inside its __init__, before `mask_id` exists
        # here: set them afterwards, then zero the padding row of the given table too.
        weights = kwargs.pop("weights", None)
        super().__init__(input_dim, output_dim, mask_zero=False, **kwargs)
        self.mask_id = mask_id
        self.supports_masking = True
        if weights is not None:
            self.build()
            self.set_weights(weights if isinstance(weights, list) else [weights])
            self._zero_padding_row()

    def build(self, input_shape=None):
        super().build(input_shape)
        self._zero_padding_row()

    def _zero_padding_row(self):
        padding_row = ops.expand_dims(ops.arange(self.input_dim) == self.mask_id, -1)
        # The variable's value: JAX cannot trace an operation on the Variable itself.
        self.embeddings.assign(ops.where(padding_row, 0.0, ops.convert_to_tensor(self.embeddings)))

    def call(self, inputs):
        vectors = super().call(inputs)
        # Multiplying by the mask zeroes the output and, with it, the gradient that would
        # reach the padding row: it stays exactly as built, zero.
        keep = ops.cast(ops.not_equal(inputs, self.mask_id), vectors.dtype)
        return vectors * ops.expand_dims(keep, -1)

    def compute_mask(self, inputs, mask=None):
        return ops.not_equal(inputs, self.mask_id)

    def get_config(self):
        config = super().get_config()
        config.pop("mask_zero", None)
        config["mask_id"] = self.mask_id
        return config
