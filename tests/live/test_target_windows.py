"""Report E's models read their targets from the same input window as their tokens (the
auxiliary losses are added inside the model), so the output is shorter than the input.
The rules and probes must still recognise a next-token model and judge its real positions."""

import keras
import pytest

import nandoctor
from nandoctor.layers import AuxiliaryLosses

LENGTH, VOCABULARY = 12, 20


def window_model(causal: bool):
    window = keras.Input((LENGTH + 2,), dtype="int32")
    x = keras.layers.Embedding(VOCABULARY, 16, mask_zero=True, name="emb")(window[:, :LENGTH])
    attended = keras.layers.MultiHeadAttention(2, 8, name="attention")(x, x, use_causal_mask=causal)
    x = keras.layers.LayerNormalization()(keras.layers.Add()([x, attended]))
    predictions = [[keras.layers.Dense(VOCABULARY)(x), keras.layers.Dense(VOCABULARY)(x)]]
    model = keras.Model(window, AuxiliaryLosses(num_blocks=1, horizon=2)([window[:, 1:], predictions]))
    model.compile("adam")
    return model


@pytest.mark.parametrize("causal", [False, True], ids=["mask dropped", "causal"])
def test_a_window_that_carries_its_targets_is_judged_as_a_next_token_model(keras_seed, tmp_path, causal):
    model = window_model(causal)
    model.save(tmp_path / "window.keras")
    scanned = {f.code for f in nandoctor.scan([tmp_path / "window.keras"]).findings}
    checked = {f.code for f in nandoctor.check(model).findings}
    expected = set() if causal else {"ND501", "ND502"}
    assert scanned & {"ND501"} == expected - {"ND502"}
    assert checked & {"ND501", "ND502"} == expected
    assert "ND302" not in checked  # the padded positions' own outputs are not a leak
