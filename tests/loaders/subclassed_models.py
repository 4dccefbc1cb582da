"""Subclassed Keras models whose layers nest in every way Keras saves: layers inside custom
layers, lists and dicts of layers, a Sequential inside, KerasHub blocks in a list. Shared by
the weight-mapping tests and the hostile-link tests, which plant links in their files."""

import numpy as np


def nested_model(keras):
    """Layers inside custom layers, a list of blocks, a Sequential inside, a dict of heads, an
    Embedding inside a custom layer and a model attribute that is a list of plain layers."""

    class TokenTable(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.embedding = keras.layers.Embedding(40, 8)

        def call(self, ids):
            return self.embedding(ids)

    class Block(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.dense = keras.layers.Dense(8)
            self.norm = keras.layers.LayerNormalization()
            self.inner = keras.Sequential([keras.layers.Dense(8), keras.layers.Dense(8)])

        def call(self, x):
            return self.inner(self.norm(self.dense(x)))

    class Net(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.tokens = TokenTable()
            self.blocks = [Block(name=f"block_{index}") for index in range(2)]
            self.projections = [keras.layers.Dense(8), keras.layers.Dense(8)]
            self.heads = {"intent": keras.layers.Dense(2), "slot": keras.layers.Dense(3)}

        def call(self, ids):
            x = self.tokens(ids)
            for block in self.blocks:
                x = block(x)
            for projection in self.projections:
                x = projection(x)
            return self.heads["intent"](x), self.heads["slot"](x)

    model = Net(name="net")
    model(np.zeros((1, 5), "int32"))
    return model


def keras_hub_blocks_model(keras):
    """KerasHub's token-and-position embedding and a list of its transformer encoders, the
    way a hand-written backbone holds them."""
    import keras_hub

    class Encoder(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.embedding = keras_hub.layers.TokenAndPositionEmbedding(30, 6, 8)
            self.transformer_layers = [keras_hub.layers.TransformerEncoder(16, 2) for _ in range(2)]
            self.head = keras.layers.Dense(3)

        def call(self, ids):
            x = self.embedding(ids)
            for layer in self.transformer_layers:
                x = layer(x)
            return self.head(x)

    model = Encoder(name="encoder")
    model(np.zeros((1, 6), "int32"))
    return model
