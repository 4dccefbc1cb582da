"""Input embedding and output projection sharing one matrix."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="nandoctor")
class TiedEmbedding(keras.layers.ReversibleEmbedding):
    """One `(vocabulary, hidden)` matrix that embeds token ids and, called with
    `reverse=True`, projects hidden states back to logits over the vocabulary.

    Tying the input embedding and the output softmax (Press and Wolf, 2016) halves the
    vocabulary parameters and usually lowers perplexity. The common hand-written version,
    an output layer holding a reference to the embedding layer, trains but does not
    survive saving: on reload the reference is not restored and the output matrix is
    either missing or a separate copy (field report B). This layer is Keras's own
    `ReversibleEmbedding` with the tie always on: the model file stores the matrix once,
    and the tie holds after reloading and further training. Fixes `ND401`
    untied-embeddings and `ND402` broken-tie.

    Args:
        input_dim: size of the vocabulary.
        output_dim: size of each vector (the model's hidden size).
        **kwargs: other keyword arguments passed to `keras.layers.ReversibleEmbedding`
            (`embeddings_initializer`, `mask_zero`, `logit_soft_cap`, `name`, ...), except
            `tie_weights`, which is always `True`.

    Call arguments:
        inputs: token ids, or hidden states of size `output_dim` when `reverse=True`.
        reverse: `False` (default) to embed ids; `True` to return logits over the
            vocabulary, `inputs @ transpose(embeddings)`. Pair it with a loss built with
            `from_logits=True`.

    Example:
    ```python
    tokens = keras.Input((None,), dtype="int32")
    embedding = nandoctor.layers.TiedEmbedding(10000, 256)
    hidden = keras.layers.GRU(256, return_sequences=True)(embedding(tokens))
    logits = embedding(hidden, reverse=True)
    model = keras.Model(tokens, logits)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ```

    Reference: [Press and Wolf, 2016](https://arxiv.org/abs/1608.05859).
    """

    def __init__(self, input_dim, output_dim, **kwargs):
        if not kwargs.pop("tie_weights", True):
            raise ValueError("TiedEmbedding is always tied. Received: tie_weights=False")
        super().__init__(input_dim, output_dim, tie_weights=True, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.pop("tie_weights", None)
        return config
