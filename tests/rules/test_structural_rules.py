"""Structural rules on real saved models: the evidence in each finding, and near misses."""

import tracemalloc
import zipfile

import h5py
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nandoctor
from nandoctor.analysis.matrix_comparison import correlation, max_abs_difference
from nandoctor.loaders import load
from nandoctor.view import array_sources as weight_reading
from tests.conftest import FIXTURES


def findings(path, code):
    return [f for f in nandoctor.scan(str(path)).findings if f.code == code]


@pytest.mark.parametrize(
    "name",
    [
        "near_miss_one_hot_flatten.keras",
        "near_miss_frozen_zero_padding_flatten.keras",
        "near_miss_mask_carried_to_lstm.keras",
        "near_miss_bidirectional_encoder.keras",
    ],
)
def test_padding_near_misses_are_quiet(name):
    assert [f.code for f in nandoctor.scan(str(FIXTURES / "clean" / name)).findings if f.code.startswith("ND3")] == []


def test_padding_not_masked_names_the_consumer_and_why():
    (finding,) = findings(FIXTURES / "broken" / "seed_d_padding_flatten.keras", "ND301")
    assert finding.details["consumer"] == "flatten" and finding.details["length"] == 60
    assert "Flatten 'flatten'" in finding.message and "side by side" in finding.message


def test_a_lambda_drops_the_mask_before_a_recurrent_layer(keras, save):
    model = keras.Sequential(
        [
            keras.Input((10,), dtype="int32"),
            keras.layers.Embedding(50, 8, mask_zero=True, name="emb"),
            keras.layers.Lambda(lambda x: x * 2.0, name="scale"),
            keras.layers.GRU(4, name="gru"),
        ]
    )
    (finding,) = findings(save(model, "m.keras"), "ND302")
    assert (finding.layer, finding.details["consumer"]) == ("scale", "gru")


def test_padding_row_norm_is_compared_with_the_median_row():
    (finding,) = findings(FIXTURES / "broken" / "seed_d_padding_flatten.keras", "ND303")
    with load(str(FIXTURES / "broken" / "seed_d_padding_flatten.keras")) as view:
        table = view.layer("embedding").weights[0].read()
    assert finding.details["row_norm"] == pytest.approx(float(np.linalg.norm(table[0])))
    assert finding.details["median_row_norm"] == pytest.approx(
        float(np.median(np.linalg.norm(table, axis=1))), rel=1e-6
    )


def test_untied_embeddings_report_the_parameters_tying_saves_as_a_recommendation():
    # Untied matrices are a legitimate design (most open LLMs ship untied): info, not a warning.
    (finding,) = findings(FIXTURES / "broken" / "seed_b_untied_language_model.keras", "ND401")
    assert finding.details["parameters_saved"] == 200 * 32 and finding.severity == "info"
    assert finding.details["language_model"] and finding.message.startswith("a language model: ")
    assert finding.details["evidence"] == "certain"


def test_untied_embeddings_are_a_warning_where_the_model_meant_to_tie_them(keras, save):
    tokens = keras.Input((None,), dtype="int32")
    x = keras.layers.GRU(16, return_sequences=True)(keras.layers.Embedding(200, 16, name="word_emb")(tokens))
    model = keras.Model(tokens, keras.layers.Dense(200, activation="softmax", name="tied_output")(x))
    (finding,) = nandoctor.scan(save(model, "m.keras"), select=["ND401"]).findings
    assert finding.severity == "warning" and "yet the matrices are two" in finding.message


def test_a_tied_embedding_is_not_reported_untied():
    assert findings(FIXTURES / "clean" / "fixed_seed_b_tied_language_model.keras", "ND4") == []


def test_a_declared_tie_stored_twice_with_different_values_is_broken(keras, save, tmp_path):
    model = keras.Sequential(
        [keras.Input((4,), dtype="int32"), keras.layers.ReversibleEmbedding(30, 8, tie_weights=True, name="rev")]
    )
    path = save(model, "tied.keras")
    # A second, drifted copy of the matrix beside a config that declares the tie: as a broken save leaves it.
    broken = tmp_path / "broken.keras"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(broken, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "model.weights.h5":
                (tmp_path / "weights.h5").write_bytes(data)
                with h5py.File(tmp_path / "weights.h5", "r+") as h5:
                    variables = h5["layers/reversible_embedding/vars"]
                    variables.create_dataset("1", data=variables["0"][()].T + 0.5)
                data = (tmp_path / "weights.h5").read_bytes()
            target.writestr(item, data)
    (finding,) = findings(broken, "ND402")
    assert finding.layer == "rev" and finding.details["max_abs_difference"] == pytest.approx(0.5)


def test_an_untied_reversible_embedding_is_not_a_broken_tie(keras, save):
    """KerasHub's Llama, Mistral and Phi3 are untied by design: `reverse_embeddings` exists
    only then, and a weights file (no config to say so) shows the two matrices."""
    model = keras.Sequential(
        [keras.Input((4,), dtype="int32"), keras.layers.ReversibleEmbedding(30, 8, tie_weights=False, name="rev")]
    )
    assert findings(save(model, "untied.keras"), "ND402") == []
    assert findings(save(model, "untied.weights.h5"), "ND402") == []


def test_the_tie_comparison_reads_in_blocks_with_bounded_memory(tmp_path, monkeypatch):
    rows, width = 160_000, 64  # 40 MiB per matrix
    table = np.random.default_rng(0).normal(size=(rows, width)).astype(np.float32)
    with h5py.File(tmp_path / "pair.weights.h5", "w") as h5:
        group = h5.create_group("layers/embedding/vars")
        group["0"] = table
        group["1"] = table.T.copy()
    monkeypatch.setattr(weight_reading, "BLOCK_BYTES", 256 << 10)
    with load(str(tmp_path / "pair.weights.h5")) as view:
        first, second = view.layer("embedding").weights
        tracemalloc.start()
        difference = max_abs_difference(first, second, transposed=True)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert difference == 0.0
    assert peak < 8 << 20, f"peak {peak} bytes for two 40 MiB matrices"


_ROWS, _WIDTH = 300, 8


@pytest.mark.parametrize(
    "kernel_dtype, block_bytes",
    [
        ("float32", None),  # both read in one block
        ("float16", _ROWS * _WIDTH * 2),  # the kernel whole, the table in two blocks
        ("float32", 16 * _WIDTH * 4),  # the kernel 16 columns at a time
    ],
)
def test_a_transposed_kernel_meets_the_table_column_for_row_however_it_is_read(
    tmp_path, monkeypatch, kernel_dtype, block_bytes
):
    """A kernel `(d, V)` no larger than a block is read whole, a larger one a block of columns at a
    time: either way column j of the kernel meets row j of the table."""
    rng = np.random.default_rng(0)
    table = rng.normal(size=(_ROWS, _WIDTH)).astype(np.float32)
    kernel = (table + rng.normal(scale=0.1, size=table.shape)).T.astype(kernel_dtype)
    kernel[5, _ROWS - 3] += 4.0  # the one large difference, in the last block
    with h5py.File(tmp_path / "pair.weights.h5", "w") as h5:
        group = h5.create_group("layers/embedding/vars")
        group["0"] = table
        group["1"] = kernel
    if block_bytes is not None:
        monkeypatch.setattr(weight_reading, "BLOCK_BYTES", block_bytes)
    against = kernel.T.astype(np.float32)
    with load(str(tmp_path / "pair.weights.h5")) as view:
        first, second = view.layer("embedding").weights
        assert max_abs_difference(first, second, transposed=True) == np.abs(table - against).max()
        expected = np.corrcoef(table.ravel().astype(np.float64), against.ravel().astype(np.float64))[0, 1]
        assert correlation(first, second, transposed=True) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(
    "name",
    [
        "near_miss_transformer_with_causal_mask.keras",
        "near_miss_transformer_with_causal_mask_keras2.h5",
        "fixed_seed_e_causal_transformer.keras",
        "near_miss_bidirectional_encoder.keras",
    ],
)
def test_causal_or_pooled_attention_is_not_reported(name):
    assert findings(FIXTURES / "clean" / name, "ND501") == []


def test_missing_causal_mask_names_the_output_that_would_see_the_future():
    found = findings(FIXTURES / "broken" / "nd501_transformer_without_causal_mask_keras2.h5", "ND501")
    assert {f.layer for f in found} == {"attention_0", "attention_1"}
    assert all(f.details["output"] == "next_char" for f in found)


def test_an_explicit_attention_mask_counts_as_causal(keras, save):
    tokens = keras.Input((8,), dtype="int32")
    mask = keras.Input((8, 8), dtype="bool")
    x = keras.layers.Embedding(20, 8, mask_zero=True)(tokens)
    x = keras.layers.MultiHeadAttention(2, 4, name="attention")(x, x, attention_mask=mask)
    model = keras.Model([tokens, mask], keras.layers.Dense(20, name="next")(x))
    assert findings(save(model, "m.keras"), "ND501") == []


@pytest.mark.parametrize(
    "name",
    [
        "near_miss_sinusoid_concatenated.keras",
        "near_miss_sinusoid_interleaved.keras",
        "near_miss_position_table_exact_length.keras",
    ],
)
def test_position_near_misses_are_quiet(name):
    assert [f.code for f in nandoctor.scan(str(FIXTURES / "clean" / name)).findings if f.code.startswith("ND5")] == []


def test_malformed_sinusoid_says_what_is_wrong():
    (finding,) = findings(FIXTURES / "broken" / "nd503_malformed_sinusoid.keras", "ND503")
    assert "frequencies that are not 10000^(-2i/d)" in finding.message


def test_malformed_sinusoid_is_found_with_and_without_the_streamed_statistics():
    """With every weight's statistics streamed (the whole catalogue), ND503 skips tables by
    row 0's largest |value|; alone, it reads row 0: both find the same table."""
    path = FIXTURES / "broken" / "nd503_malformed_sinusoid.keras"
    with load(str(path)) as view:
        view.compute_weight_stats()
        assert any(weight.computed_stats is not None for weight in view.weights())
    alone = nandoctor.scan(str(path), select=["ND503"]).findings
    assert [f.details for f in alone] == [f.details for f in findings(path, "ND503")] and len(alone) == 1


# Row 0 of a sinusoidal table, as far as `looks_sinusoidal` tolerates: sines near 0, cosines near 1.
_NEAR_ZERO = st.floats(-1.2e-6, 1.2e-6)
_NEAR_ONE = st.floats(1 - 1.2e-5, 1 + 1.2e-5)


@given(st.lists(st.tuples(_NEAR_ZERO, _NEAR_ONE), min_size=2, max_size=12), st.lists(_NEAR_ZERO, max_size=1))
def test_a_row_that_looks_sinusoidal_is_never_ruled_out_by_its_largest_value(pairs, odd_sine):
    from nandoctor.analysis.position_tables import looks_sinusoidal, may_look_sinusoidal

    row = [value for pair in pairs for value in pair] + odd_sine  # one sine and one cosine per frequency
    values = np.array(row, dtype=np.float32).astype(float)  # as a file stores it, as the statistics widen it
    if looks_sinusoidal(values):
        assert may_look_sinusoidal(float(np.abs(values).max()), len(values))


def test_scale_mismatch_reports_the_ratio():
    (finding,) = findings(FIXTURES / "broken" / "nd504_position_scale_mismatch.keras", "ND504")
    assert finding.details["ratio"] > 10 and finding.details["tokens"] == "token_emb"


def test_scale_factor_is_an_option():
    path = str(FIXTURES / "broken" / "nd504_position_scale_mismatch.keras")
    ratio = findings(path, "ND504")[0].details["ratio"]
    assert nandoctor.scan(path, select=["ND504"], options={"ND504": {"factor": ratio * 2}}).findings == []


def test_a_too_short_table_names_the_missing_positions():
    (finding,) = findings(FIXTURES / "broken" / "nd505_position_table_too_short.keras", "ND505")
    assert finding.details == {"rows": 16, "positions": 32, "evidence": "certain"}
    assert "positions 16 to 31 have no row" in finding.message


def test_the_memory_network_temporal_table_is_found_as_a_position_table():
    """Field report A's custom `x + kernel` layer is recognised by its weight's shape."""
    from nandoctor.analysis.position_tables import position_tables

    with load(str(FIXTURES / "broken" / "seed_a_memory_network.keras")) as view:
        tables = {table.layer.name: table.tokens.name for table in position_tables(view)}
    assert tables == {"temporal_a": "embedding_a", "temporal_c": "embedding_c"}


def translation_model(keras, decoder_causal: bool):
    """A functional encoder-decoder: the encoder attends both ways, the decoder's output is the
    next target token at every position."""
    source, target = keras.Input((8,), dtype="int32"), keras.Input((8,), dtype="int32")
    encoded = keras.layers.Embedding(30, 8, mask_zero=True, name="source_emb")(source)
    encoded = keras.layers.MultiHeadAttention(2, 4, name="encoder_attention")(encoded, encoded)
    decoded = keras.layers.Embedding(30, 8, mask_zero=True, name="target_emb")(target)
    decoded = keras.layers.MultiHeadAttention(2, 4, name="decoder_attention")(
        decoded, decoded, use_causal_mask=decoder_causal
    )
    decoded = keras.layers.MultiHeadAttention(2, 4, name="cross_attention")(decoded, encoded)
    return keras.Model([source, target], keras.layers.Dense(30, name="next_token")(decoded))


def test_the_encoder_of_a_translation_model_may_attend_both_ways(keras, save):
    assert findings(save(translation_model(keras, decoder_causal=True), "translation.keras"), "ND501") == []
    (finding,) = findings(save(translation_model(keras, decoder_causal=False), "leaky.keras"), "ND501")
    assert finding.layer == "decoder_attention"


def test_a_model_named_a_masked_language_model_is_not_a_next_token_model(keras, save):
    tokens = keras.Input((8,), dtype="int32")
    x = keras.layers.Embedding(30, 8, mask_zero=True, name="word_embedding")(tokens)
    x = keras.layers.Add()([x, keras.layers.MultiHeadAttention(2, 4, name="attention")(x, x)])
    model = keras.Model(
        tokens, keras.layers.Dense(30, activation="softmax", name="mlm_cls")(x), name="masked_bert_model"
    )
    assert findings(save(model, "mlm.keras"), "ND501") == []
    assert [f for f in nandoctor.check(model).findings if f.code in ("ND501", "ND502")] == []


def test_a_causal_model_with_no_sign_of_padding_is_told_once_per_embedding_at_info(keras, save):
    tokens = keras.Input((16,), dtype="int32")
    x = keras.layers.Embedding(30, 8, name="chars")(tokens)
    for block in range(3):
        x = keras.layers.Add()(
            [x, keras.layers.MultiHeadAttention(2, 4, name=f"attention_{block}")(x, x, use_causal_mask=True)]
        )
    model = keras.Model(tokens, keras.layers.Dense(30, name="next_char")(x))
    (finding,) = findings(save(model, "causal.keras"), "ND301")
    assert finding.severity == "info" and finding.confidence == "low"
    assert finding.details["consumers"] == ["attention_0", "attention_1", "attention_2"]
    assert "if its windows are never padded, nothing leaks" in finding.message


def test_an_output_kernel_set_from_the_embedding_then_trained_apart_is_a_broken_tie(keras, save):
    tokens = keras.Input((8,), dtype="int32")
    embedding = keras.layers.Embedding(60, 8, name="word_emb")
    hidden = keras.layers.GRU(8, return_sequences=True)(embedding(tokens))
    output = keras.layers.Dense(60, use_bias=False, name="next_word")
    model = keras.Model(tokens, output(hidden))
    table = embedding.get_weights()[0]
    drift = np.random.default_rng(0).normal(scale=0.005, size=table.shape).astype("float32")
    output.set_weights([(table + drift).T])
    (finding,) = findings(save(model, "apart.keras"), "ND402")
    assert finding.layer == "next_word" and finding.severity == "warning" and finding.details["correlation"] > 0.9
    output.set_weights([np.random.default_rng(1).normal(size=table.T.shape).astype("float32")])
    assert findings(save(model, "untied.keras"), "ND402") == []


def test_a_tied_llama_whose_config_forgets_the_tie_cannot_be_reloaded(keras, tmp_path):
    """KerasHub 0.32's LlamaBackbone does not save tie_word_embeddings (default False)."""
    import keras_hub

    backbone = keras_hub.models.LlamaBackbone(
        vocabulary_size=40,
        num_layers=1,
        num_query_heads=2,
        num_key_value_heads=1,
        hidden_dim=8,
        intermediate_dim=16,
        tie_word_embeddings=True,
    )
    task = keras_hub.models.LlamaCausalLM(backbone=backbone, preprocessor=None)
    task.save(tmp_path / "tied.keras")
    with pytest.raises(ValueError, match="expected 2 variables"):
        keras.models.load_model(tmp_path / "tied.keras")
    (finding,) = findings(tmp_path / "tied.keras", "ND402")
    assert finding.layer.endswith("token_embedding") and finding.details["backbone"] == "LlamaBackbone"
    backbone.save_to_preset(str(tmp_path / "preset"))
    (finding,) = findings(tmp_path / "preset", "ND402")
    assert "cannot load this file back" in finding.message
