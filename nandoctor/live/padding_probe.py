from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from nandoctor.analysis.keras_facts import (
    EMBEDDING_CLASSES,
    PADDING_SAFE_EMBEDDINGS,
    UNMASKED_BY_DESIGN,
)
from nandoctor.analysis.padding_flow import reads_unpadded_windows, shows_padding
from nandoctor.live.live_check import LiveCheck
from nandoctor.live.model_inputs import first_output, probe_inputs, typical_values
from nandoctor.live.model_layers import every_layer
from nandoctor.report import Confidence, Evidence, Finding, Severity
from nandoctor.rules.mask_dropped import MaskDropped
from nandoctor.rules.padding_not_masked import PaddingNotMasked

# Padding reaches the output when changing it moves the outputs at real positions by more
# than this fraction of what one real token moves them by. Chosen between the ratios measured
# on the zoo (bench/judgement.py writes the distributions to docs/benchmarks.md): correct
# models measure exactly 0, a language model that does not leak at most 3.7e-5 (a hand-written
# tie's log-softmax, rounding), leaking ones at least 2.4e-3 (KerasHub's RoFormerV2, its mask
# on the wrong axis): about 8x from each of the last two.
LEAK_RATIO = 3e-4
_INPUTS = (
    "random texts of {length} ids, half of them padding (id 0): a batch padded after the text (post) "
    "and, where the model takes no padding mask and is no language model, one padded before it (pre)"
)


# How Keras pads: `pad_sequences` before the text by default, `TextVectorization`,
# `padded_batch` and KerasHub's preprocessors after it.
PADDINGS = ("post", "pre")


def padded_batch(
    rng: np.random.Generator, vocabulary: int, length: int, dtype, padding: str
) -> tuple[np.ndarray, np.ndarray]:
    """Two texts of random ids filling half the length, padded with 0 `padding` ("pre" or
    "post") as Keras pads, and where each real token is."""
    tokens = rng.integers(1, max(vocabulary, 2), size=(2, length)).astype(dtype)
    real = np.zeros(tokens.shape, bool)
    if padding == "post":
        real[:, : length - length // 2] = True
    else:
        real[:, length // 2 :] = True
    tokens[~real] = 0
    return tokens, real


def _without_padding_score(output: np.ndarray, vocabulary: int) -> np.ndarray:
    """An output over the padded table's vocabulary, without what the padding id's own score
    does to it: a tie (declared, or written by hand) computes that score from the padding row
    by design, and a softmax spreads it over every probability. What the other ids' scores say
    relative to each other (their centred logits, or log-probabilities) is what padding that
    leaks into the computation would move."""
    if output.shape[-1] != vocabulary or vocabulary < 3:
        return output
    scores = output[..., 1:]
    if np.all(output >= 0) and np.allclose(output.sum(axis=-1), 1.0, atol=1e-3):
        scores = np.log(np.maximum(scores, np.finfo(np.float32).tiny))
    return scores - scores.mean(axis=-1, keepdims=True)


def _one_token_changed(tokens: np.ndarray, real: np.ndarray, vocabulary: int) -> np.ndarray:
    """`tokens` with each text's first real token replaced by another id."""
    changed = tokens.copy()
    rows, first = np.arange(len(tokens)), real.argmax(axis=1)
    changed[rows, first] = (changed[rows, first] % max(vocabulary - 1, 1)) + 1
    return changed


def _keras_hub_design(model) -> str | None:
    """Where the leak is KerasHub's own design, not the user's code: a class whose architecture
    takes no padding mask (FNet's Fourier mixing, SigLIP's text tower). A class that masks and
    still leaks has a fault of its own, which the finding reports as any other."""
    cls = type(model)
    if not cls.__module__.startswith(("keras_hub.", "keras_nlp.")):
        return None
    design = next((why for prefix, why in UNMASKED_BY_DESIGN.items() if cls.__name__.startswith(prefix)), None)
    return f"KerasHub's {cls.__name__} {design}, by design" if design else None


class PaddingProbe(LiveCheck):
    """## What it does
    Confirms on the live model whether padded positions reach the output: it gives the
    padding row (id 0) of each embedding other values (and puts the row back) and measures how
    much the outputs at real positions move, on texts padded as Keras pads (`pre` and `post`,
    each in a batch of its own), against how much one real token moves them. A model that
    takes a padding mask (KerasHub's `padding_mask`) is given the true one. (Empty texts, all
    padding, are the NaN probe's.)

    ## Why is this bad?
    A masked model's output does not depend on what the padding vector holds. If it moves,
    padding leaks into the computation (no mask: ND301; a mask dropped on the way: ND302),
    and the static finding is confirmed with the measurement as its evidence.
    """

    name = "padding-probe"
    raises = (PaddingNotMasked, MaskDropped)

    def __init__(self, sample=None) -> None:
        super().__init__(sample)
        # Each embedding's measured ratio, leaking or not, and whether the model is a language
        # model over windows (id 0 no evidence of padding there): what the threshold benchmark reads.
        self.ratios: list[float] = []
        self.windows = False

    def run(self, model, view=None) -> Iterator[Finding]:
        import keras

        inputs = probe_inputs(model, view)
        sequences = [slot for slot in inputs.ids() if slot.is_sequence]
        embeddings = [layer for layer in every_layer(model) if type(layer).__name__ in EMBEDDING_CLASSES]
        if len(sequences) != 1 or not embeddings or inputs.shape(sequences[0])[1] < 4:
            return
        ids = sequences[0]
        # The tables of the padded ids: a segment or type table's row 0 is a real segment.
        embeddings = [
            layer for layer in embeddings if getattr(layer, "input_dim", None) == ids.vocabulary
        ] or embeddings
        rng = np.random.default_rng(0)
        length = inputs.shape(ids)[1]
        takes_mask = any(slot.role == "padding_mask" for slot in inputs.slots)

        def run_on(values, real):
            # A model that takes a padding mask is told where the padding is, as its tokenizer
            # would; its other inputs are the same on every run (one generator, one seed).
            same = np.random.default_rng(1)

            def fill(slot, shape):
                if slot is ids:
                    return values
                if slot.role == "padding_mask" and len(slot.shape) == 2:
                    return (values != 0).astype(slot.dtype)
                if slot.role == "positions":  # a masked LM predicts at real tokens only
                    return np.stack([same.choice(np.flatnonzero(row), size=shape[1:]) for row in real]).astype(
                        slot.dtype
                    )
                return typical_values(slot, shape, same)

            # What the outputs say about real tokens, the padding id's own score aside.
            return _without_padding_score(first_output(model, inputs.build(fill, batch=len(values))), ids.vocabulary)

        def at_real_positions(changed, base, real, broken: float):
            """The largest change where a masked loss or a pooled output reads: real positions.
            An output the model cannot compute either way (non-finite in `base`: a float16 norm
            over a zero row) says nothing; one the change makes non-finite counts as `broken`."""
            difference = np.where(np.isfinite(base), np.abs(changed - base), 0.0)
            difference = np.nan_to_num(difference, nan=broken, posinf=broken)
            if difference.ndim == 3 and difference.shape[1] <= length:
                # Per-position outputs, aligned at the start (a window may also carry its
                # targets, and be longer than the output).
                difference = difference[real[:, : difference.shape[1]]]
            return float(difference.max()) if difference.size else 0.0

        # Each convention is a batch of its own: an output that compares the rows of a batch
        # (a contrastive model's logits) must not read one convention's padding into another's.
        batches = {name: padded_batch(rng, ids.vocabulary, length, ids.dtype, name) for name in PADDINGS}
        bases = {"post": run_on(*batches["post"])}
        language_model = bases["post"].ndim == 3 and bases["post"].shape[-1] in (ids.vocabulary, ids.vocabulary - 1)
        # A language model's pipelines and KerasHub's preprocessors (the padding mask's makers)
        # pad after the text; elsewhere a user pads either way, and padding leaks only where
        # it reaches the real outputs whichever way they pad (a model that classifies its first
        # position needs `post`; an LSTM read at its last step, `pre`).
        conventions = ["post"] if language_model or takes_mask else list(PADDINGS)
        bases.update({name: run_on(*batches[name]) for name in conventions if name not in bases})
        self.windows = not takes_mask and (language_model or (view is not None and reads_unpadded_windows(view)))
        real_change = (
            max(
                # A real token that breaks the output (an id of a zero row under float16) is
                # measured by the positions it leaves finite: its infinity is no unit.
                at_real_positions(
                    run_on(_one_token_changed(*batches[name], ids.vocabulary), batches[name][1]),
                    bases[name],
                    batches[name][1],
                    broken=0.0,
                )
                for name in conventions
            )
            or 1.0
        )
        for layer in embeddings:
            table = keras.ops.convert_to_numpy(layer.embeddings)
            if not layer.trainable and not table[0].any():
                # A frozen zero padding row stays zero: what a padded position adds is fixed
                # (the static rule judges that); changing it would measure a vector never seen.
                continue
            altered = table.copy()
            altered[0] = rng.normal(scale=float(np.abs(table).mean()) * 10 + 1e-3, size=table.shape[1])
            # The padding row is changed on the model itself and always put back: cloning
            # fails on too many models (subclassed tasks, shared layers) to be the way.
            layer.embeddings.assign(altered)
            try:
                altered_outputs = {name: run_on(*batches[name]) for name in conventions}
            finally:
                layer.embeddings.assign(table)
            # Padding that breaks a real output reaches it: an infinite leak.
            leak = min(
                at_real_positions(altered_outputs[name], bases[name], batches[name][1], broken=np.inf)
                for name in conventions
            )
            ratio = leak / real_change
            self.ratios.append(ratio)
            if ratio > LEAK_RATIO:
                yield self._finding(model, view, ids, layer, leak, real_change, length, language_model, takes_mask)

    def _finding(
        self,
        model,
        view,
        ids,
        layer,
        leak: float,
        real_change: float,
        length: int,
        language_model: bool,
        takes_mask: bool,
    ) -> Finding:
        masked = getattr(layer, "mask_zero", False) or type(layer).__name__ in PADDING_SAFE_EMBEDDINGS
        rule = MaskDropped if masked else PaddingNotMasked
        # Keras's convention makes id 0 padding for token ids fed to an embedding; only a
        # language model (measured: its outputs are over its input vocabulary) over windows
        # that shows no padding is exempt from it.
        windows = reads_unpadded_windows(view) if view is not None else False
        if language_model and view is not None:
            windows = windows or not shows_padding(view)
        padded = masked or ids.shape[1] is None or takes_mask or not windows
        message = (
            f"changing only the padding vector (id 0) of '{layer.name}' moves the outputs at real positions "
            f"by {leak:.3g}, {leak / real_change:.3g} times what changing one real token does: padded "
            "positions reach the output"
        )
        design = _keras_hub_design(model)
        if takes_mask and not design:
            message += " despite the padding mask it was given"
        if design:
            message += f"; {design}"
        elif not padded:
            # Fixed-length windows may hold no padding at all (a language model's contexts):
            # the measurement is sure, whether id 0 is padding is not.
            message += (
                "; whether id 0 is padding here is unknown (a language model over fixed-length windows, no "
                "mask_zero, no padding mask): if it is, mask it"
            )
        return rule.finding(
            layer.name,
            message,
            severity=None if padded and not design else Severity.INFO,
            confidence=Confidence.HIGH,
            evidence=Evidence.MEASURED,
            measured=f"the real positions' outputs moved {leak:.3g} when only the padding vector changed, "
            f"against {real_change:.3g} for one real token",
            details={
                "padding_change": leak,
                "real_token_change": real_change,
                "ratio": leak / real_change,
                "evidence_of_padding": padded,
                "inputs": _INPUTS.format(length=length),
            },
        )

    def confirms(self, measured: Finding, suspicion: Finding) -> bool:
        """The probe names the embedding; ND302 names the layer that dropped its mask, and
        the embedding as `mask_from`."""
        return measured.code == suspicion.code and measured.layer in (
            suspicion.layer,
            suspicion.details.get("mask_from"),
        )
