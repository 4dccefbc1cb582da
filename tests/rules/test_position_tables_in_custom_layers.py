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
        self.pos_emb = keras.layers.Embedding(
            maxlen, embed_dim, embeddings_initializer=keras.initializers.RandomNormal(stddev=position_std)
        )

    def call(self, x):
        return self.token_emb(x) + self.pos_emb(keras.ops.arange(0, keras.ops.shape(x)[-1]))

    def get_config(self):
        return {
            **super().get_config(),
            "maxlen": self.maxlen,
            "vocab_size": self.vocab_size,
            "embed_dim": self.embed_dim,
            "position_std": self.position_std,
        }


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

    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=50, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16, max_sequence_length=16
    )
    backbone.save(tmp_path / "right.keras")
    assert codes(tmp_path / "right.keras") == {}
    table = backbone.get_layer("position_embedding").position_embeddings
    table.assign(table.numpy() * 1000)
    backbone.save(tmp_path / "drowned.keras")
    finding = codes(tmp_path / "drowned.keras")["ND504"]
    assert finding.details["tokens"].endswith("token_embedding")


@keras.saving.register_keras_serializable(package="position_table_tests")
class LearnedPositions(keras.layers.Layer):
    """A position table of `maxlen` rows made by `add_weight` and looked up with `take`: a model
    fed longer sequences builds, and fails (CPU) or reads zeros (GPU) only at run time."""

    def __init__(self, maxlen, **kwargs):
        super().__init__(**kwargs)
        self.maxlen = maxlen

    def build(self, input_shape):
        self.table = self.add_weight(
            shape=(self.maxlen, input_shape[-1]),
            name="position_table",
            initializer=keras.initializers.RandomUniform(-0.05, 0.05),
        )

    def call(self, x):
        return x + keras.ops.take(self.table, keras.ops.arange(keras.ops.shape(x)[1]), axis=0)

    def get_config(self):
        return {**super().get_config(), "maxlen": self.maxlen}


@keras.saving.register_keras_serializable(package="position_table_tests")
class LatentQueries(keras.layers.Layer):
    """A Perceiver-style array of 16 learned queries as wide as the tokens: not a position table."""

    def build(self, input_shape):
        self.queries = self.add_weight(shape=(16, input_shape[-1]), name="queries")

    def call(self, x):
        scores = keras.ops.softmax(keras.ops.einsum("qd,btd->bqt", self.queries, x))
        return keras.ops.einsum("bqt,btd->bqd", scores, x)


@keras.saving.register_keras_serializable(package="position_table_tests")
class TokenAndPositionWeights(keras.layers.Layer):
    """Both tables made by `add_weight`: a `.keras` file names them by index, not by name."""

    def __init__(self, maxlen, vocab_size, embed_dim, **kwargs):
        super().__init__(**kwargs)
        self.maxlen, self.vocab_size, self.embed_dim = maxlen, vocab_size, embed_dim

    def build(self, input_shape):
        uniform = keras.initializers.RandomUniform(-0.05, 0.05)
        self.tokens = self.add_weight(shape=(self.vocab_size, self.embed_dim), initializer=uniform, name="tokens")
        self.positions = self.add_weight(shape=(self.maxlen, self.embed_dim), initializer=uniform, name="positions")

    def call(self, ids):
        positions = keras.ops.arange(keras.ops.shape(ids)[-1])
        return keras.ops.take(self.tokens, ids, axis=0) + keras.ops.take(self.positions, positions, axis=0)

    def get_config(self):
        return {
            **super().get_config(),
            "maxlen": self.maxlen,
            "vocab_size": self.vocab_size,
            "embed_dim": self.embed_dim,
        }


def pooled(tokens, x):
    return keras.Model(tokens, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling1D()(x)))


def with_learned_positions(length, maxlen):
    tokens = keras.Input((length,), dtype="int32")
    return pooled(tokens, LearnedPositions(maxlen, name="positions")(keras.layers.Embedding(100, 8)(tokens)))


def test_a_custom_table_with_fewer_rows_than_its_input_is_too_short(save):
    finding = codes(save(with_learned_positions(32, 16), "short.keras"))["ND505"]
    assert (finding.layer, finding.severity, finding.details["rows"], finding.details["positions"]) == (
        "positions",
        "error",
        16,
        32,
    )


def test_a_custom_table_as_long_as_its_input_is_quiet(save):
    assert "ND505" not in codes(save(with_learned_positions(32, 32), "right.keras"))


def test_learned_queries_as_wide_as_the_tokens_are_not_a_position_table(save):
    tokens = keras.Input((32,), dtype="int32")
    model = pooled(tokens, LatentQueries(name="latents")(keras.layers.Embedding(100, 8)(tokens)))
    assert codes(save(model, "latents.keras")) == {}


@pytest.mark.parametrize("length, maxlen, short", [(32, 16, True), (16, 16, False)])
def test_both_tables_made_by_add_weight_are_told_apart_by_the_length_argument(save, length, maxlen, short):
    tokens = keras.Input((length,), dtype="int32")
    model = pooled(tokens, TokenAndPositionWeights(maxlen, 100, 8, name="embed")(tokens))
    found = codes(save(model, "tables.keras"))
    assert ("ND505" in found) == short and "ND504" not in found
