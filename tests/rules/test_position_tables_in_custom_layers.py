"""keras-io's `TokenAndPositionEmbedding`: a custom layer holding both tables, checked like
a position table added by `Add` (ND504, ND505)."""

import keras
import pytest

import nandoctor


@keras.saving.register_keras_serializable(package="position_table_tests")
class TokenAndPositionEmbedding(keras.layers.Layer):
    def __init__(self, maxlen, vocab_size, embed_dim, position_std=0.05, **kwargs):
        super().__init__(**kwargs)
        self.maxlen, self.vocab_size, self.embed_dim, self.position_std = maxlen, vocab_size, embed_dim, position_std
        self.token_emb = keras.layers.Embedding(vocab_size, embed_dim)
        self.pos_emb = keras.layers.Embedding(maxlen, embed_dim,
                                              embeddings_initializer=keras.initializers.RandomNormal(stddev=position_std))

    def call(self, x):
        return self.token_emb(x) + self.pos_emb(keras.ops.arange(0, keras.ops.shape(x)[-1]))

    def get_config(self):
        return {**super().get_config(), "maxlen": self.maxlen, "vocab_size": self.vocab_size,
                "embed_dim": self.embed_dim, "position_std": self.position_std}


def classifier(length, maxlen, position_std=0.05):
    tokens = keras.Input((length,), dtype="int32")
    x = TokenAndPositionEmbedding(maxlen, 100, 16, position_std, name="embed")(tokens)
    return keras.Model(tokens, keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling1D()(x)))


def codes(path):
    return {f.code: f for f in nandoctor.scan(path).findings if f.code in ("ND504", "ND505")}


def test_a_table_matching_its_length_and_the_token_scale_is_quiet(save):
    assert codes(save(classifier(20, 20), "right.keras")) == {}


def test_a_table_shorter_than_the_input_is_too_short(save):
    finding = codes(save(classifier(32, 20), "short.keras"))["ND505"]
    assert finding.layer == "embed"


@pytest.mark.parametrize("std", [5.0, 1e-4])
def test_a_table_far_from_the_token_scale_is_a_scale_mismatch(save, std):
    finding = codes(save(classifier(20, 20, std), "scale.keras"))["ND504"]
    assert finding.details["tokens"].startswith("embed/")


def test_a_keras_hub_position_table_is_judged_against_its_sibling_token_table(tmp_path):
    """A KerasHub backbone's graph is its code: the tables are paired by KerasHub's names."""
    import keras_hub

    backbone = keras_hub.models.GPT2Backbone(vocabulary_size=50, num_layers=1, num_heads=2, hidden_dim=8,
                                             intermediate_dim=16, max_sequence_length=16)
    backbone.save(tmp_path / "right.keras")
    assert codes(tmp_path / "right.keras") == {}
    table = backbone.get_layer("position_embedding").position_embeddings
    table.assign(table.numpy() * 1000)
    backbone.save(tmp_path / "drowned.keras")
    finding = codes(tmp_path / "drowned.keras")["ND504"]
    assert finding.details["tokens"].endswith("token_embedding")
