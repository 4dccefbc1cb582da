from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from nandoctor.live.causal_leak import CausalLeak
from nandoctor.live.live_check import LiveCheck
from nandoctor.live.model_layers import every_layer
from nandoctor.report import Confidence, Finding

# How many perturbation positions the probe tries, spread over the sequence.
_POSITIONS = 12


class CausalProbe(LiveCheck):
    """Changes only the tokens after position `t` of a next-token model and measures the
    change of the outputs up to `t` (ND502, causal-leak)."""

    name = "causal-probe"
    raises = (CausalLeak,)

    def run(self, model, view=None) -> Iterator[Finding]:
        shape = _next_token_shape(model)
        if shape is None:
            return
        length, outputs_length, vocabulary = shape
        rng = np.random.default_rng(0)
        tokens = rng.integers(1, vocabulary, size=(2, length)).astype("int32")
        base = _predict(model, tokens)
        scale = float(np.abs(base).max()) or 1.0
        tolerance = 1e-4 * scale
        for t in _positions(outputs_length):
            changed = tokens.copy()
            changed[:, t + 1:] = rng.integers(1, vocabulary, size=changed[:, t + 1:].shape)
            outputs = _predict(model, changed)
            past = np.abs(outputs[:, : t + 1] - base[:, : t + 1]).max(axis=(0, 2))
            if past.max() > tolerance:
                first = int(np.flatnonzero(past > tolerance)[0])
                future = float(np.abs(outputs[:, t + 1:] - base[:, t + 1:]).max())
                yield CausalLeak.finding(
                    None,
                    f"changing only the tokens after position {t} changes the outputs at position {first} "
                    f"by up to {float(past.max()):.3g} (outputs after {t} changed by up to {future:.3g}): "
                    "positions see the future",
                    confidence=Confidence.HIGH,
                    details={"position": t, "first_leaking_position": first, "leak": float(past.max()),
                             "future_change": future, "inputs": f"2 random sequences of {length} ids in [1, {vocabulary})"},
                )
                return


def _next_token_shape(model) -> tuple[int, int, int] | None:
    """(input length, output length, input vocabulary) for a model mapping one integer
    sequence to a sequence. The output may be shorter than the input, aligned at its
    start: a window that also carries the targets (field report E's auxiliary losses read
    the characters after the last position from the same input)."""
    if len(model.inputs) != 1 or len(model.outputs) < 1:
        return None
    inputs, outputs = model.inputs[0], model.outputs[0]
    if "int" not in str(inputs.dtype) or len(inputs.shape) != 2 or len(outputs.shape) != 3:
        return None
    length = inputs.shape[1]
    outputs_length = outputs.shape[1]
    if length is None or outputs_length is None or not 2 <= outputs_length <= length:
        return None
    vocabularies = [layer.input_dim for layer in every_layer(model) if hasattr(layer, "input_dim")]
    return length, outputs_length, int(min(vocabularies)) if vocabularies else 100


def _positions(length: int) -> list[int]:
    return sorted({int(p) for p in np.linspace(0, length - 2, num=min(_POSITIONS, length - 1))})


def _predict(model, tokens: np.ndarray) -> np.ndarray:
    output = model(tokens, training=False)
    output = output[0] if isinstance(output, (list, tuple)) else output
    return np.asarray(output, dtype=np.float64)
