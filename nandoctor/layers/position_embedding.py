"""A learned position table added to its input."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="nandoctor")
class PositionEmbedding(keras.layers.Layer):
    """Adds a learned table of `sequence_length` position vectors to a sequence.

    The table starts at the same scale as the token vectors it is added to: its default
    initializer is `keras.layers.Embedding`'s own (uniform in [-0.05, 0.05]). A table drawn
    at another scale lets the positions drown the tokens, or vanish beside them (field
    report A: a 0.05-std table beside tokens of another scale). Pass the token embedding's
    initializer if you changed it. The padding mask passes through, and the layer can be
    used once per block (field report E adds positions at every layer) as well as once at
    the input. Fixes `ND504` positional-scale-mismatch and `ND505` positional-table-too-short.

    Args:
        sequence_length: the longest sequence the table covers.
        initializer: initializer of the table. Defaults to `"uniform"`, as Embedding's.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`, such as `name`.

    Call arguments:
        inputs: a `(batch, length, hidden)` sequence with `length <= sequence_length`; the
            first `length` rows of the table are added.

    Example:
    ```python
    tokens = keras.Input((128,), dtype="int32")
    x = keras.layers.Embedding(27, 64, mask_zero=True)(tokens)
    x = nandoctor.layers.PositionEmbedding(sequence_length=128)(x)
    ```
    """

    def __init__(self, sequence_length, initializer="uniform", **kwargs):
        super().__init__(**kwargs)
        if not isinstance(sequence_length, int) or sequence_length <= 0:
            raise ValueError(
                f"`sequence_length` must be a positive integer. Received: sequence_length={sequence_length}"
            )
        self.sequence_length = sequence_length
        self.initializer = keras.initializers.get(initializer)
        self.supports_masking = True

    def build(self, input_shape):
        length, hidden = input_shape[-2], input_shape[-1]
        if length is not None and length > self.sequence_length:
            raise ValueError(
                f"The input is longer than the position table. Expected length <= "
                f"{self.sequence_length}. Received: input_shape={tuple(input_shape)}"
            )
        self.position_embeddings = self.add_weight(
            name="position_embeddings", shape=(self.sequence_length, hidden), initializer=self.initializer
        )

    def call(self, inputs):
        length = ops.shape(inputs)[-2]
        # The variable's value, not the variable: JAX cannot trace a slice of a Variable.
        table = ops.convert_to_tensor(self.position_embeddings)
        table = ops.slice(table, (0, 0), (length, ops.shape(table)[-1]))
        return inputs + ops.cast(table, inputs.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            {"sequence_length": self.sequence_length, "initializer": keras.initializers.serialize(self.initializer)}
        )
        return config
