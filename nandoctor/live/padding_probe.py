from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from nandoctor.analysis.keras_facts import (
    EMBEDDING_CLASSES,
    PADDING_SAFE_EMBEDDINGS,
    TIED_EMBEDDING_CLASSES,
)
from nandoctor.live.live_check import LiveCheck
from nandoctor.live.model_layers import every_layer, layer_named
from nandoctor.report import Confidence, Finding
from nandoctor.rules.mask_dropped import MaskDropped
from nandoctor.rules.padding_not_masked import PaddingNotMasked

# Padding reaches the output when changing it moves the output by more than this fraction
# of what one real token moves it by.
_LEAK_RATIO = 1e-3


class PaddingProbe(LiveCheck):
    """## What it does
    Confirms on the live model whether padded positions reach the output: on a copy of the
    model, it gives the padding row (id 0) of each embedding other values and measures how
    much the outputs of padded sequences move, against how much one real token moves them.

    ## Why is this bad?
    A masked model's output does not depend on what the padding vector holds. If it moves,
    padding leaks into the computation (no mask: ND301; a mask dropped on the way: ND302),
    and the static finding is confirmed with the measurement as its evidence.
    """

    name = "padding-probe"
    raises = (PaddingNotMasked, MaskDropped)

    def run(self, model, view=None) -> Iterator[Finding]:
        import keras

        if len(model.inputs) != 1 or "int" not in str(model.inputs[0].dtype) or len(model.inputs[0].shape) != 2:
            return
        length = model.inputs[0].shape[1] or 16
        embeddings = [layer for layer in every_layer(model) if type(layer).__name__ in EMBEDDING_CLASSES]
        if not embeddings or length < 4:
            return
        try:
            copy = keras.models.clone_model(model)
            copy.set_weights(model.get_weights())
        except Exception:  # a model Keras cannot clone is not probed
            return
        vocabulary = min(int(layer.input_dim) for layer in embeddings)
        rng = np.random.default_rng(0)
        tokens = rng.integers(1, vocabulary, size=(4, length)).astype("int32")
        tokens[:, length // 2:] = 0  # post-padding: the second half of each sequence
        one_token = tokens.copy()
        one_token[:, 0] = (one_token[:, 0] % (vocabulary - 1)) + 1 if vocabulary > 2 else one_token[:, 0]
        base = _outputs(copy, tokens)
        real_change = float(np.abs(_outputs(copy, one_token) - base).max()) or 1.0
        length = tokens.shape[1]
        for layer in embeddings:
            twin = layer_named(copy, layer.name)
            table = keras.ops.convert_to_numpy(twin.embeddings)
            altered = table.copy()
            altered[0] = rng.normal(scale=float(np.abs(table).mean()) * 10 + 1e-3, size=table.shape[1])
            twin.embeddings.assign(altered)
            difference = np.abs(_outputs(copy, tokens) - base)
            twin.embeddings.assign(table)
            if type(layer).__name__ in TIED_EMBEDDING_CLASSES and difference.shape[-1] == table.shape[0]:
                # A tied projection computes the padding id's own logit from the padding row,
                # by design: that logit is not padding leaking through the computation.
                difference = difference[..., 1:]
            if difference.ndim == 3 and difference.shape[1] <= length:
                # Per-position outputs (aligned at the start; a window may also carry the
                # targets, so it can be longer): what the padded positions output is ignored
                # by any masked loss; padding leaks when the real positions (the first half) move.
                difference = difference[:, : length // 2]
            leak = float(difference.max()) if difference.size else 0.0
            if leak > _LEAK_RATIO * real_change:
                masked = getattr(layer, "mask_zero", False) or type(layer).__name__ in PADDING_SAFE_EMBEDDINGS
                rule = MaskDropped if masked else PaddingNotMasked
                yield rule.finding(
                    layer.name,
                    f"changing only the padding vector (id 0) of '{layer.name}' moves the output by {leak:.3g}, "
                    f"{leak / real_change:.3g} times what changing one real token does: padded positions reach the output",
                    confidence=Confidence.HIGH,
                    details={"padding_change": leak, "real_token_change": real_change,
                             "inputs": f"4 random sequences of {length} ids, the second half padded with 0"},
                )

    def confirms(self, measured: Finding, suspicion: Finding) -> bool:
        """The probe names the embedding; ND302 names the layer that dropped its mask, and
        the embedding as `mask_from`."""
        return measured.code == suspicion.code and measured.layer in (suspicion.layer, suspicion.details.get("mask_from"))


def _outputs(model, tokens: np.ndarray) -> np.ndarray:
    output = model(tokens, training=False)
    output = output[0] if isinstance(output, (list, tuple)) else output
    return np.asarray(output, dtype=np.float64)
