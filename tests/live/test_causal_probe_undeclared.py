"""The causal probe on every next-token model, declared or not: a hand-written GPT that forgets
its causal mask does not say it is causal, which is exactly its fault. Models bidirectional by
design (a masked LM, an encoder, a tagger) stay quiet."""

import keras
import pytest

import nandoctor

VOCABULARY, LENGTH, WIDTH = 24, 8, 8


@keras.saving.register_keras_serializable(package="undeclared")
class TransformerBlock(keras.layers.Layer):
    """A decoder block as hand-written GPTs have it; `causal` is passed on only if `honours`."""

    def __init__(self, causal=False, honours=True, **kwargs):
        super().__init__(**kwargs)
        self.causal, self.honours = causal, honours
        self.attention = keras.layers.MultiHeadAttention(2, 4)
        self.feed_forward = keras.layers.Dense(WIDTH)
        self.norm = keras.layers.LayerNormalization()

    def call(self, x):
        attended = self.attention(x, x, use_causal_mask=self.causal and self.honours)
        return self.norm(x + self.feed_forward(attended))

    def get_config(self):
        return {**super().get_config(), "causal": self.causal, "honours": self.honours}


def functional_gpt(block: TransformerBlock, name="gpt"):
    tokens = keras.Input((LENGTH,), dtype="int32")
    x = keras.layers.Embedding(VOCABULARY, WIDTH)(tokens)
    return keras.Model(tokens, keras.layers.Dense(VOCABULARY, name="logits")(block(x)), name=name)


class SubclassedGPT(keras.Model):
    def __init__(self, causal: bool, **kwargs):
        super().__init__(**kwargs)
        self.embedding = keras.layers.Embedding(VOCABULARY, WIDTH)
        self.block = TransformerBlock(causal=causal)
        self.logits = keras.layers.Dense(VOCABULARY)

    def call(self, tokens):
        return self.logits(self.block(self.embedding(tokens)))


def subclassed_gpt(causal: bool):
    model = SubclassedGPT(causal)
    model(keras.ops.ones((1, LENGTH), "int32"))
    return model


def found(model, code):
    return [f for f in nandoctor.check(model).findings if f.code == code]


@pytest.mark.parametrize(
    "make",
    [
        lambda: functional_gpt(TransformerBlock(causal=False)),
        lambda: subclassed_gpt(causal=False),
    ],
    ids=["custom layer", "subclassed model"],
)
def test_a_gpt_without_a_causal_mask_that_declares_nothing_gets_causal_leak(keras_seed, make):
    (leak,) = found(make(), "ND502")
    assert leak.severity == "error" and leak.details["evidence"] == "measured"
    assert leak.details["next_token_model"] == "its output at every position is over its input vocabulary"


@pytest.mark.parametrize(
    "make",
    [
        lambda: functional_gpt(TransformerBlock(causal=True)),
        lambda: subclassed_gpt(causal=True),
    ],
    ids=["custom layer", "subclassed model"],
)
def test_the_same_gpts_with_their_causal_mask_are_quiet(keras_seed, make):
    assert found(make(), "ND502") == []


def test_a_wrapper_configured_causal_that_drops_the_mask_is_missing_causal_mask(keras_seed):
    model = functional_gpt(TransformerBlock(causal=True, honours=False, name="decoder_block"))
    report = nandoctor.check(model)
    (missing,) = [f for f in report.findings if f.code == "ND501"]
    assert missing.layer == "decoder_block" and missing.details["evidence"] == "measured"
    assert "configured causal=True" in missing.message
    assert [f.code for f in report.findings if f.code == "ND502"] == ["ND502"]


def test_a_masked_language_model_sees_both_ways_by_design(keras_seed):
    # The BERT objective: every position predicts its own (masked) token from both sides.
    assert found(functional_gpt(TransformerBlock(causal=False), name="bert_masked_lm"), "ND502") == []


def test_an_encoder_and_a_tagger_are_not_next_token_models(keras_seed):
    tokens = keras.Input((LENGTH,), dtype="int32")
    encoded = TransformerBlock(causal=False)(keras.layers.Embedding(VOCABULARY, WIDTH)(tokens))
    encoder = keras.Model(tokens, encoded)
    tagger = keras.Model(tokens, keras.layers.Dense(5, activation="softmax")(encoded))
    assert found(encoder, "ND502") == [] and found(tagger, "ND502") == []
