from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from nandoctor.analysis.causality import CAUSAL_FLAGS, declares_causality, declares_masked_lm
from nandoctor.analysis.keras_facts import is_known_class
from nandoctor.live.causal_leak import CausalLeak
from nandoctor.live.live_check import LiveCheck, model_backend
from nandoctor.live.model_inputs import first_output, probe_inputs, typical_values
from nandoctor.live.model_layers import every_layer
from nandoctor.report import Confidence, Evidence, Finding
from nandoctor.rules.missing_causal_mask import MissingCausalMask

# How many perturbation positions the probe tries, spread over the sequence.
_POSITIONS = 12


class CausalProbe(LiveCheck):
    """Changes only the tokens after position `t` of a next-token model and measures the
    change of the outputs up to `t` (ND502, causal-leak).

    A next-token model is one that says it is causal, or, declared or not, one whose output
    at every position is a distribution over its own input vocabulary: a model that lacks
    its causal mask does not say it is causal, which is the fault. A model bidirectional by
    design (a masked LM: its class or name, a mask token) is left alone. Where a layer's
    config says causal and the positions still see the future, that layer does not pass
    the mask on (ND501, measured)."""

    name = "causal-probe"
    raises = (CausalLeak, MissingCausalMask)

    def run(self, model, view=None) -> Iterator[Finding]:
        inputs = probe_inputs(model, view)
        shape = _next_token_shape(model, inputs)
        if shape is None:
            return
        ids, length, outputs_length, width = shape
        over_vocabulary = width == ids.vocabulary
        if view is not None and _bidirectional_by_design(view):
            return
        if view is not None and not over_vocabulary and not _claims_causality(model, view):
            backend = model_backend(model)
            if backend != "tensorflow":
                self.notes.append(
                    f"{self.name} could not look for a causal mask built in the model's code (it reads "
                    f"TensorFlow graphs, and this model runs on {backend}): it probes only a model whose "
                    "config or layers declare causality"
                )
            return  # a bidirectional model (an encoder, a tagger) may see both ways
        rng = np.random.default_rng(0)
        tokens = rng.integers(1, ids.vocabulary, size=(2, length)).astype(ids.dtype)

        def predict(values):
            return first_output(
                model, inputs.build(lambda slot, s: values if slot is ids else typical_values(slot, s, rng))
            )

        base = predict(tokens)
        scale = float(np.abs(base).max()) or 1.0
        tolerance = 1e-4 * scale
        for t in _positions(outputs_length):
            changed = tokens.copy()
            changed[:, t + 1 :] = rng.integers(1, ids.vocabulary, size=changed[:, t + 1 :].shape)
            outputs = predict(changed)
            past = np.abs(outputs[:, : t + 1] - base[:, : t + 1]).max(axis=(0, 2))
            if past.max() > tolerance:
                first = int(np.flatnonzero(past > tolerance)[0])
                future = float(np.abs(outputs[:, t + 1 :] - base[:, t + 1 :]).max())
                yield CausalLeak.finding(
                    None,
                    f"changing only the tokens after position {t} changes the outputs at position {first} "
                    f"by up to {float(past.max()):.3g} (outputs after {t} changed by up to {future:.3g}): "
                    "positions see the future",
                    confidence=Confidence.HIGH,
                    measured=f"outputs at position {first} moved {float(past.max()):.3g} when only tokens after "
                    f"{t} changed",
                    details={
                        "position": t,
                        "first_leaking_position": first,
                        "leak": float(past.max()),
                        "future_change": future,
                        "inputs": f"2 random sequences of {length} ids in [1, {ids.vocabulary})",
                        "next_token_model": "its output at every position is over its input vocabulary"
                        if over_vocabulary
                        else "it declares causality",
                    },
                )
                yield from _wrappers_that_drop_causality(model, t, first)
                return


def _bidirectional_by_design(view) -> bool:
    """A masked language model: named so (class, name, output), or holding a mask token."""
    return declares_masked_lm(view) or any(
        layer.config.get(key) is not None for layer in view.layers for key in _MASK_TOKEN_KEYS
    )


# Config keys of a masked LM's mask token (KerasHub's preprocessors and masked-LM generators).
_MASK_TOKEN_KEYS = ("mask_token_id", "mask_token_rate", "mask_selection_rate")


def _wrappers_that_drop_causality(model, position: int, first: int) -> Iterator[Finding]:
    """User layers whose config says causal while the model's positions see the future: their
    call does not pass the mask on to the attention inside them."""
    for layer in every_layer(model):
        module = type(layer).__module__
        if is_known_class(type(layer).__name__, module):
            continue
        try:
            config = layer.get_config()
        except Exception:  # a user's get_config may fail; it then says nothing about causality
            continue
        flag = next((key for key in CAUSAL_FLAGS if config.get(key) is True), None)
        if flag is not None:
            yield MissingCausalMask.finding(
                layer.name,
                f"{type(layer).__name__} '{layer.name}' is configured {flag}=True, yet changing only the tokens "
                f"after position {position} moves the outputs at position {first}: its call does not pass the "
                "causal mask on to its attention",
                evidence=Evidence.MEASURED,
                confidence=Confidence.MEDIUM,
                measured=f"outputs up to position {position} moved when only later tokens changed",
                details={"flag": flag, "position": position, "first_leaking_position": first},
            )


def _claims_causality(model, view) -> bool:
    """The model says it is causal, or is a next-token model whose self-attention lacks the
    mask (ND501): only then does seeing the future break it. A model says so by a causal
    mask asked for (`use_causal_mask=True`, or a layer whose call defaults to it), a causal
    layer or task class, or a triangular mask computed in its graph (`tril`, `i >= j` over
    ranges, as keras-io's decoders build theirs): a mask meant to be causal, right or wrong."""
    if declares_causality(view):
        return True
    if declares_masked_lm(view):
        return False  # an explicit bidirectional objective, whatever masks its code builds
    if any(_defaults_to_causal(layer) for layer in every_layer(model)):
        return True
    if any(True for _ in MissingCausalMask().check(view)):
        return True
    return _computes_triangular_mask(model, view)


def _defaults_to_causal(layer) -> bool:
    import inspect

    if getattr(layer, "use_causal_mask", None) is True or getattr(layer, "is_causal", None) is True:
        return True
    try:
        parameter = inspect.signature(layer.call).parameters.get("use_causal_mask")
    except (TypeError, ValueError):
        return False
    return parameter is not None and parameter.default is True


_COMPARISONS = ("GreaterEqual", "Greater", "LessEqual", "Less")
_INDEX_ARITHMETIC = ("ExpandDims", "Reshape", "StridedSlice", "Sub", "AddV2", "Add", "Cast", "Identity", "Tile")


def _computes_triangular_mask(model, view) -> bool:
    from nandoctor.live.traced_graph import traced_graph

    if model_backend(model) != "tensorflow":
        return False  # the graph it reads is TensorFlow's
    graph = traced_graph(model, view)
    if graph is None:
        return False  # a model that cannot be traced makes no claim the probe can read
    for op in graph.forward:
        if op.type == "MatrixBandPart":
            return True
        if op.type in _COMPARISONS and all(_from_range(tensor) for tensor in op.inputs):
            return True
    return False


def _from_range(tensor, depth: int = 0) -> bool:
    op = tensor.op
    if op.type == "Range":
        return True
    if depth > 8 or op.type not in _INDEX_ARITHMETIC:
        return False
    return any(_from_range(operand, depth + 1) for operand in op.inputs)


def _next_token_shape(model, inputs) -> tuple | None:
    """(the ids slot, input length, output length, output width) for a model mapping one integer sequence
    (with its padding mask, if it takes one) to a sequence. The output may be shorter than
    the input, aligned at its start: a window that also carries the targets (field report
    E's auxiliary losses read the characters after the last position from the same input)."""
    sequences = [slot for slot in inputs.ids() if slot.is_sequence]
    others = [slot for slot in inputs.slots if slot.role not in ("ids", "padding_mask")]
    if len(sequences) != 1 or len(inputs.ids()) != 1 or others:
        return None
    ids = sequences[0]
    length = inputs.shape(ids)[1]
    output = first_output(model, inputs.typical(np.random.default_rng(0)))
    if output.ndim != 3 or not 2 <= output.shape[1] <= length:
        return None
    return ids, length, output.shape[1], output.shape[-1]


def _positions(length: int) -> list[int]:
    return sorted({int(p) for p in np.linspace(0, length - 2, num=min(_POSITIONS, length - 1))})
