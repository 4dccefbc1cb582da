"""Custom layers for the probe tests, importable with `--custom-objects tests.live.leaky_layers`."""

import keras


class _AttentionWrapper(keras.layers.Layer):
    """Self-attention around a MultiHeadAttention; each subclass gets its masking wrong."""

    def __init__(self, heads=2, key_dim=4, **kwargs):
        super().__init__(**kwargs)
        self.heads, self.key_dim = heads, key_dim
        self.attention = keras.layers.MultiHeadAttention(heads, key_dim)

    def get_config(self):
        return {**super().get_config(), "heads": self.heads, "key_dim": self.key_dim}


@keras.saving.register_keras_serializable(package="leaky")
class ForgetfulAttention(_AttentionWrapper):
    """An attention wrapper that takes use_causal_mask and never passes it on."""

    def call(self, x, use_causal_mask=True):
        return self.attention(x, x)


@keras.saving.register_keras_serializable(package="leaky")
class FutureOnlyAttention(_AttentionWrapper):
    """An inverted mask: each position attends to itself and the positions after it."""

    def call(self, x):
        length = keras.ops.shape(x)[1]
        future = keras.ops.triu(keras.ops.ones((length, length), "bool"))
        return self.attention(x, x, attention_mask=keras.ops.expand_dims(future, 0))


def language_model(attention_layer=None, causal=True, length=8, vocabulary=20):
    tokens = keras.Input((length,), dtype="int32")
    x = keras.layers.Embedding(vocabulary, 8, mask_zero=True)(tokens)
    if attention_layer is None:
        attended = keras.layers.MultiHeadAttention(2, 4, name="attention")(x, x, use_causal_mask=causal)
    else:
        attended = attention_layer(x)
    model = keras.Model(tokens, keras.layers.Dense(vocabulary, name="next")(keras.layers.Add()([x, attended])))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model
