"""The learned temporal encoding of end-to-end memory networks."""

from __future__ import annotations

import keras

from nandoctor.layers.position_embedding import PositionEmbedding


@keras.saving.register_keras_serializable(package="nandoctor")
class TemporalEncoding(PositionEmbedding):
    """Adds a learned vector per memory slot to the memories of a memory network
    (`T_A` and `T_C` of Sukhbaatar et al., 2015: one instance for each memory matrix).

    Field report A added its own `x + kernel` table drawn from a normal of std 0.05 beside
    token embeddings of another scale, and its accuracy fell from 96% to 10%. This table
    starts at the token embeddings' scale (Embedding's own initializer) and passes the
    memory mask through. Fixes `ND504` positional-scale-mismatch.

    Args:
        memory_size: the number of memory slots (the context window).
        initializer: initializer of the table. Defaults to `"uniform"`, as Embedding's.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`, such as `name`.

    Call arguments:
        inputs: memories of shape `(batch, memory_size, hidden)` (or fewer slots).

    Example:
    ```python
    context = keras.Input((6,), dtype="int32")
    memory_a = nandoctor.layers.TemporalEncoding(6)(keras.layers.Embedding(1000, 64)(context))
    memory_c = nandoctor.layers.TemporalEncoding(6)(keras.layers.Embedding(1000, 64)(context))
    ```

    Reference: [Sukhbaatar et al., 2015](https://arxiv.org/abs/1503.08895).
    """

    def __init__(self, memory_size, initializer="uniform", **kwargs):
        super().__init__(sequence_length=memory_size, initializer=initializer, **kwargs)
        self.memory_size = memory_size

    def get_config(self):
        config = super().get_config()
        config["memory_size"] = config.pop("sequence_length")
        return config
