"""A pre-norm transformer decoder block whose attention is always causal."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="nandoctor")
class CausalSelfAttention(keras.layers.Layer):
    """`x + Attention(LayerNorm(x))`, then `x + MLP(LayerNorm(x))`, where position `t`
    attends only to positions `<= t` that are not padding.

    Next-token models leak when a position can see the token it must predict: a
    `MultiHeadAttention` called without `use_causal_mask=True`, or a wrapper that drops
    the flag, trains to an implausibly low loss and fails at generation time. Here the
    causal mask is not an option. The padding mask of the input (from a masking
    embedding, or passed as `mask=`) is combined with it: no position attends to padding,
    not even left padding in its past. The mask passes through to the next block. Fixes `ND501`
    missing-causal-mask and `ND502` causal-leak (field report E).

    Args:
        num_heads: number of attention heads; must divide the hidden size.
        intermediate_dim: width of the MLP's hidden layer (often 4 x hidden).
        dropout: dropout rate on attention weights and both residual branches.
            Defaults to `0.0`.
        activation: the MLP's activation. Defaults to `"gelu"`.
        layer_norm_epsilon: epsilon of both layer normalisations. Defaults to `1e-5`.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`, such as `name`.

    Call arguments:
        inputs: a `(batch, length, hidden)` sequence.
        training: whether dropout is active.

    Example:
    ```python
    tokens = keras.Input((256,), dtype="int32")
    x = keras.layers.Embedding(27, 128, mask_zero=True)(tokens)
    for _ in range(4):
        x = nandoctor.layers.PositionEmbedding(256)(x)
        x = nandoctor.layers.CausalSelfAttention(num_heads=4, intermediate_dim=512)(x)
    ```

    Reference: [Al-Rfou et al., 2018](https://arxiv.org/abs/1808.04444).
    """

    def __init__(self, num_heads, intermediate_dim, dropout=0.0, activation="gelu", layer_norm_epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(num_heads, int) or num_heads <= 0:
            raise ValueError(f"`num_heads` must be a positive integer. Received: num_heads={num_heads}")
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon
        self.supports_masking = True

    def build(self, input_shape):
        hidden = input_shape[-1]
        if hidden % self.num_heads:
            raise ValueError(
                f"The hidden size must be a multiple of `num_heads`. Received: hidden={hidden}, num_heads={self.num_heads}"
            )
        self.attention_norm = keras.layers.LayerNormalization(epsilon=self.layer_norm_epsilon, name="attention_norm")
        self.attention = keras.layers.MultiHeadAttention(
            self.num_heads, key_dim=hidden // self.num_heads, dropout=self.dropout, name="attention"
        )
        self.mlp_norm = keras.layers.LayerNormalization(epsilon=self.layer_norm_epsilon, name="mlp_norm")
        self.mlp_in = keras.layers.Dense(self.intermediate_dim, activation=self.activation, name="mlp_in")
        self.mlp_out = keras.layers.Dense(hidden, name="mlp_out")
        self.residual_dropout = keras.layers.Dropout(self.dropout)
        self.attention_norm.build(input_shape)
        self.attention.build(input_shape, input_shape)
        self.mlp_norm.build(input_shape)
        self.mlp_in.build(input_shape)
        self.mlp_out.build((*input_shape[:-1], self.intermediate_dim))

    def call(self, inputs, mask=None, training=None):
        # `mask` is declared so that Keras accepts it; Keras attaches it to `inputs`, the
        # layer norm carries it, and MultiHeadAttention combines it with the causal mask.
        normed = self.attention_norm(inputs)
        attended = self.attention(normed, normed, use_causal_mask=True, training=training)
        x = inputs + self.residual_dropout(attended, training=training)
        mlp = self.mlp_out(self.mlp_in(self.mlp_norm(x)))
        return x + self.residual_dropout(mlp, training=training)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "activation": self.activation,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config
