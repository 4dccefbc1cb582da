from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from nandoctor.analysis.padding_flow import reads_unpadded_windows
from nandoctor.analysis.keras_facts import (
    EMBEDDING_CLASSES,
    PADDING_SAFE_EMBEDDINGS,
    TIED_EMBEDDING_CLASSES,
)
from nandoctor.live.live_check import LiveCheck
from nandoctor.live.model_inputs import first_output, probe_inputs, typical_values
from nandoctor.live.model_layers import every_layer
from nandoctor.report import Confidence, Evidence, Finding, Severity
from nandoctor.rules.mask_dropped import MaskDropped
from nandoctor.rules.padding_not_masked import PaddingNotMasked

# Padding reaches the output when changing it moves the output by more than this fraction
# of what one real token moves it by.
_LEAK_RATIO = 1e-3


class PaddingProbe(LiveCheck):
    """## What it does
    Confirms on the live model whether padded positions reach the output: it gives the
    padding row (id 0) of each embedding other values (and puts the row back) and measures how
    much the outputs of padded sequences move, against how much one real token moves them.
    A model that takes a padding mask (KerasHub's `padding_mask`) is given the true one.

    ## Why is this bad?
    A masked model's output does not depend on what the padding vector holds. If it moves,
    padding leaks into the computation (no mask: ND301; a mask dropped on the way: ND302),
    and the static finding is confirmed with the measurement as its evidence.
    """

    name = "padding-probe"
    raises = (PaddingNotMasked, MaskDropped)

    def run(self, model, view=None) -> Iterator[Finding]:
        import keras

        inputs = probe_inputs(model, view)
        sequences = [slot for slot in inputs.ids() if slot.is_sequence]
        embeddings = [layer for layer in every_layer(model) if type(layer).__name__ in EMBEDDING_CLASSES]
        if len(sequences) != 1 or not embeddings or inputs.shape(sequences[0])[1] < 4:
            return
        ids = sequences[0]
        # The tables of the padded ids: a segment or type table's row 0 is a real segment.
        embeddings = [layer for layer in embeddings if getattr(layer, "input_dim", None) == ids.vocabulary] or embeddings
        rng = np.random.default_rng(0)
        length = inputs.shape(ids)[1]
        tokens = rng.integers(1, max(ids.vocabulary, 2), size=(4, length)).astype(ids.dtype)
        tokens[:, length // 2:] = 0  # post-padding: the second half of each sequence
        one_token = tokens.copy()
        one_token[:, 0] = (one_token[:, 0] % (ids.vocabulary - 1)) + 1 if ids.vocabulary > 2 else one_token[:, 0]

        def run_on(values):
            # A model that takes a padding mask is told where the padding is, as its tokenizer
            # would; its other inputs are the same on every run (one generator, one seed).
            same = np.random.default_rng(1)

            def fill(slot, shape):
                if slot is ids:
                    return values
                if slot.role == "padding_mask" and len(slot.shape) == 2:
                    return (values != 0).astype(slot.dtype)
                if slot.role == "positions":  # a masked LM predicts at real tokens only
                    return same.integers(0, length // 2, size=shape).astype(slot.dtype)
                return typical_values(slot, shape, same)

            return first_output(model, inputs.build(fill, batch=4))

        base = run_on(tokens)
        real_change = float(np.abs(run_on(one_token) - base).max()) or 1.0
        for layer in embeddings:
            table = keras.ops.convert_to_numpy(layer.embeddings)
            altered = table.copy()
            altered[0] = rng.normal(scale=float(np.abs(table).mean()) * 10 + 1e-3, size=table.shape[1])
            # The padding row is changed on the model itself and always put back: cloning
            # fails on too many models (subclassed tasks, shared layers) to be the way.
            layer.embeddings.assign(altered)
            try:
                difference = np.abs(run_on(tokens) - base)
            finally:
                layer.embeddings.assign(table)
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
                # Keras's convention makes id 0 padding for token ids fed to an embedding;
                # only a causal model over windows that shows no padding is exempt from it.
                padded = (masked or ids.shape[1] is None or any(slot.role == "padding_mask" for slot in inputs.slots)
                          or view is None or not reads_unpadded_windows(view))
                message = (f"changing only the padding vector (id 0) of '{layer.name}' moves the output by {leak:.3g}, "
                           f"{leak / real_change:.3g} times what changing one real token does: padded positions "
                           "reach the output")
                if not padded:
                    # Fixed-length windows may hold no padding at all (a language model's
                    # contexts): the measurement is sure, whether id 0 is padding is not.
                    message += ("; whether id 0 is padding here is unknown (a causal model over fixed-length "
                                "windows, no mask_zero, no padding mask): if it is, mask it")
                yield rule.finding(
                    layer.name, message, severity=None if padded else Severity.INFO, confidence=Confidence.HIGH,
                    evidence=Evidence.MEASURED,
                    measured=f"the real positions' outputs moved {leak:.3g} when only the padding vector changed, "
                             f"against {real_change:.3g} for one real token",
                    details={"padding_change": leak, "real_token_change": real_change, "evidence_of_padding": padded,
                             "inputs": f"4 random sequences of {length} ids, the second half padded with 0"},
                )

    def confirms(self, measured: Finding, suspicion: Finding) -> bool:
        """The probe names the embedding; ND302 names the layer that dropped its mask, and
        the embedding as `mask_from`."""
        return measured.code == suspicion.code and measured.layer in (suspicion.layer, suspicion.details.get("mask_from"))
