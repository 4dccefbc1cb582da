from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from nandoctor.report import Confidence, Finding, Severity
from nandoctor.rule import Diagnosis

# How many perturbation positions the probe tries, spread over the sequence.
_POSITIONS = 12


class CausalLeak(Diagnosis):
    """## What it does
    Proves, on the live model, whether a next-token model's outputs at positions up to `t`
    depend on the tokens after `t`: it changes only the later tokens and measures the change
    of the earlier outputs.

    ## Why is this bad?
    A position that sees the token it must predict learns to copy it: training loss looks
    excellent and generation fails. The static rule ND501 reads the `use_causal_mask`
    argument from the saved graph; this probe also catches what the graph does not say: an
    attention wrapper that drops the flag, an inverted mask that attends only to the
    future, custom attention code.

    ## Example
    ```python
    import keras
    import nandoctor

    tokens = keras.Input((16,), dtype="int32")
    x = keras.layers.Embedding(100, 32)(tokens)
    x = keras.layers.MultiHeadAttention(4, 8)(x, x)  # no use_causal_mask
    model = keras.Model(tokens, keras.layers.Dense(100)(x))
    nandoctor.check(model)  # ND502: outputs at position 0 change when later tokens do
    ```

    ## Use instead
    ```python
    import keras
    import nandoctor

    tokens = keras.Input((16,), dtype="int32")
    x = keras.layers.Embedding(100, 32, mask_zero=True)(tokens)
    x = nandoctor.layers.CausalSelfAttention(num_heads=4, intermediate_dim=128)(x)
    model = keras.Model(tokens, keras.layers.Dense(100)(x))
    ```
    """

    code = "ND502"
    name = "causal-leak"
    severity = Severity.ERROR
    confidence = Confidence.HIGH
    fix = "Mask attention causally (use_causal_mask=True), or build the decoder from nandoctor.layers.CausalSelfAttention."

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
                yield Finding(
                    self.code, self.name, self.severity, Confidence.HIGH, None,
                    f"changing only the tokens after position {t} changes the outputs at position {first} "
                    f"by up to {float(past.max()):.3g} (outputs after {t} changed by up to {future:.3g}): "
                    "positions see the future",
                    self.fix,
                    {"position": t, "first_leaking_position": first, "leak": float(past.max()),
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
    vocabularies = [layer.input_dim for layer in model._flatten_layers() if hasattr(layer, "input_dim")]
    return length, outputs_length, int(min(vocabularies)) if vocabularies else 100


def _positions(length: int) -> list[int]:
    return sorted({int(p) for p in np.linspace(0, length - 2, num=min(_POSITIONS, length - 1))})


def _predict(model, tokens: np.ndarray) -> np.ndarray:
    output = model(tokens, training=False)
    output = output[0] if isinstance(output, (list, tuple)) else output
    return np.asarray(output, dtype=np.float64)
