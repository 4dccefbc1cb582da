"""Inputs a live model accepts, built from its own input structure, for every probe.

A model takes one array, a list, or a dict (KerasHub's `{"token_ids", "padding_mask"}`);
its inputs carry token ids (integer, or float ids that feed an embedding), padding masks,
segment ids or real-valued features; a free sequence length must be one its layers accept
(a strided `Conv1D` needs a minimum, a position table a maximum). `probe_inputs` reads all of
that from the model, and tries lengths until a forward pass runs. A model it cannot feed
raises `CannotProbe`, whose reason the report shows.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from nandoctor.analysis.keras_facts import EMBEDDING_CLASSES
from nandoctor.live.model_layers import every_layer

# Free sequence lengths tried in order: short first (probes are cheap there), longer for
# models whose strided layers or fixed windows need more.
_LENGTHS = (8, 16, 32, 64, 128, 256)
_DEFAULT_VOCABULARY = 50


class CannotProbe(Exception):
    """The probes cannot feed this model; the message says why. `error` is what the model
    raised on typical inputs of its own declared shape, ids inside every table: such a
    failure may itself be a diagnosis (a position table too short)."""

    def __init__(self, message: str, error: BaseException | None = None):
        super().__init__(message)
        self.error = error


@dataclass(frozen=True)
class InputSlot:
    """One input of the model: its name (the dict key, or its InputLayer's name), its shape
    with free dimensions as None, the dtype it takes, and what it carries: "ids",
    "padding_mask", "segment_ids", "positions" (indices into the sequence, as KerasHub's
    `mask_positions`) or "features". `vocabulary` bounds the ids."""

    name: str
    shape: tuple
    dtype: str
    role: str
    vocabulary: int = _DEFAULT_VOCABULARY

    @property
    def is_sequence(self) -> bool:
        return len(self.shape) == 2 and self.role in ("ids", "padding_mask", "segment_ids")


@dataclass
class ProbeInputs:
    slots: list[InputSlot]
    structure: Any  # the model's input nest, to pack arrays into; None for one array
    length: int  # the length given to free sequence dimensions

    def shape(self, slot: InputSlot, batch: int = 2) -> tuple:
        dims = [self.length if d is None and axis == 1 else (d or 4) for axis, d in enumerate(slot.shape[1:], 1)]
        return (batch, *dims)

    def ids(self) -> list[InputSlot]:
        return [slot for slot in self.slots if slot.role == "ids"]

    def build(self, fill: Callable[[InputSlot, tuple], np.ndarray], batch: int = 2) -> Any:
        """The model's input, each slot's array made by `fill(slot, shape)`."""
        return self.pack({slot.name: fill(slot, self.shape(slot, batch)) for slot in self.slots})

    def pack(self, arrays: dict[str, np.ndarray]) -> Any:
        flat = [arrays[slot.name] for slot in self.slots]
        if self.structure is None:
            return flat[0]
        import keras

        return keras.tree.pack_sequence_as(self.structure, flat)

    def typical(self, rng: np.random.Generator, batch: int = 2) -> Any:
        """Inputs like real data: ids of live rows, masks of all ones, unit-scale features."""
        return self.build(lambda slot, shape: typical_values(slot, shape, rng), batch)


def typical_values(slot: InputSlot, shape: tuple, rng: np.random.Generator) -> np.ndarray:
    if slot.role == "ids":
        return rng.integers(1, max(slot.vocabulary, 2), size=shape).astype(slot.dtype)
    if slot.role == "padding_mask":
        return np.ones(shape, dtype=slot.dtype)
    if slot.role == "segment_ids":
        return np.zeros(shape, dtype=slot.dtype)
    if slot.role == "positions":
        return rng.integers(0, shape[1], size=shape).astype(slot.dtype)
    return rng.normal(size=shape).astype(slot.dtype)


def once_per_view(cache: weakref.WeakKeyDictionary, model, view, compute: Callable[[], Any]) -> Any:
    """`compute()`, remembered for this view and model: the live checks of one `check()`
    share what is costly to find (a length the model runs at, its traced graph). A
    `CannotProbe` it raises is remembered too; without a view nothing is."""
    if view is None:
        return compute()
    cached = cache.get(view)
    if cached is None or cached[0] is not model:
        try:
            cached = (model, compute(), None)
        except CannotProbe as reason:
            cached = (model, None, reason)
        cache[view] = cached
    if cached[2] is not None:
        raise cached[2]
    return cached[1]


_FOUND: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def probe_inputs(model, view=None) -> ProbeInputs:
    """The model's inputs, and a free length its layers accept; found once per view (the
    search for a length runs the model)."""
    return once_per_view(_FOUND, model, view, lambda: _probe_inputs(model, view))


def _probe_inputs(model, view) -> ProbeInputs:
    structure, tensors = _input_structure(model)
    slots = [_slot(name, shape, dtype, model, view) for name, shape, dtype in tensors]
    if not slots:
        raise CannotProbe("the model has no inputs that can be read")
    free = any(d is None for slot in slots for d in slot.shape[1:])
    inputs = ProbeInputs(slots, structure, _LENGTHS[0])
    rng = np.random.default_rng(0)
    if not free:
        try:
            model(inputs.typical(rng), training=False)
        except Exception as error:  # the model cannot run on its own declared shape
            raise CannotProbe(
                f"the model fails on typical inputs of its own shape: {type(error).__name__}", error
            ) from None
        return inputs
    failures: list[str] = []
    working: list[int] = []
    for length in _LENGTHS:
        if len(working) < 2 and _runs_at(model, inputs, length, rng, failures):
            working.append(length)
    if not working:
        raise CannotProbe(f"no sequence length in {list(_LENGTHS)} runs the model ({failures[-1]})")
    # The next length that runs too, where there is one: a model that runs only just (its
    # strided layers down to one step) is where backends fail in the backward pass.
    inputs.length = working[-1]
    return inputs


def _runs_at(model, inputs: ProbeInputs, length: int, rng, failures: list[str]) -> bool:
    inputs.length = length
    try:
        outputs = model(inputs.typical(rng), training=False)
    except Exception as error:  # the lengths this model cannot take
        failures.append(f"{length}: {type(error).__name__}")
        return False
    # Too short for its strided layers, a model can still run, on empty intermediate
    # sequences whose pooling gives -inf: typical inputs must give finite outputs.
    import keras

    if all(is_finite(output) for output in keras.tree.flatten(outputs)):
        return True
    failures.append(f"{length}: non-finite outputs on typical inputs")
    return False


def input_nest(model):
    """The model's symbolic inputs in the structure it takes: `model.input` (a dict for
    KerasHub models), else `model.inputs` (a Sequential loaded from a file has only those),
    else None (a subclassed model)."""
    try:
        return model.input
    except (AttributeError, ValueError):
        pass
    inputs = getattr(model, "inputs", None)
    if not inputs:
        return None
    return inputs[0] if len(inputs) == 1 else list(inputs)


def to_host(value, dtype=None) -> np.ndarray:
    """A tensor of the model's backend as a numpy array: PyTorch's outputs carry their autograd
    graph, which numpy refuses."""
    import keras

    if keras.backend.backend() == "torch" and not isinstance(value, np.ndarray):
        value = keras.ops.convert_to_numpy(value)
    return np.asarray(value, dtype=dtype)


def is_finite(tensor) -> bool:
    values = to_host(tensor)
    # ids and masks are finite; numpy knows bfloat16 only through ml_dtypes, as a kind of its own ("V").
    floating = values.dtype.kind in "fc" or values.dtype.name == "bfloat16"
    return not floating or bool(np.isfinite(values).all())


def first_output(model, inputs) -> np.ndarray:
    """The model's first output on `inputs` (of a dict, list or single output), in float64."""
    output = model(inputs, training=False)
    if isinstance(output, dict):
        output = next(iter(output.values()))
    output = output[0] if isinstance(output, (list, tuple)) else output
    return to_host(output, np.float64)


def _input_structure(model) -> tuple[Any, list[tuple[str, tuple, str]]]:
    """(the nest to pack into or None, [(name, shape, dtype)]) in the nest's flat order."""
    import keras

    nest = input_nest(model)
    if nest is None:
        return None, _subclassed_input(model)
    flat = keras.tree.flatten(nest)
    names = _flat_keys(nest) if isinstance(nest, dict) else [_input_layer_name(tensor) for tensor in flat]
    tensors = [(name, tuple(tensor.shape), _dtype_name(tensor.dtype)) for name, tensor in zip(names, flat)]
    return (nest if len(flat) > 1 or isinstance(nest, (dict, list, tuple)) else None), tensors


def _dtype_name(dtype) -> str:
    # Keras 3 names dtypes by string; a tf_keras (Keras 2) tensor carries a tf.DType.
    return getattr(dtype, "name", None) or str(dtype)


def _flat_keys(nest: dict) -> list[str]:
    # keras.tree flattens a dict in sorted key order; nested dicts are not model inputs in practice.
    return [str(key) for key in sorted(nest)]


def _subclassed_input(model) -> list[tuple[str, tuple, str]]:
    """A subclassed model has no Input layers: the shape of its first call, and integer ids
    when it embeds them."""
    shapes = getattr(model, "_build_shapes_dict", None) or {}
    shape = next((s for s in shapes.values() if isinstance(s, (tuple, list))), None)
    if shape is None:
        raise CannotProbe("the model has never been called, so its input shape is unknown")
    embeds = any(type(layer).__name__ in EMBEDDING_CLASSES for layer in every_layer(model))
    return [("input", (None, *shape[1:]), "int32" if embeds else "float32")]


def _input_layer_name(tensor) -> str:
    # A Keras 3 input tensor is named keras_tensor_N; the graph knows its InputLayer's name.
    history = getattr(tensor, "_keras_history", None)
    return getattr(getattr(history, "operation", None), "name", None) or tensor.name


def _slot(name: str, shape: tuple, dtype: str, model, view) -> InputSlot:
    lowered = name.lower()
    if "padding_mask" in lowered or lowered.endswith("_mask") or lowered == "mask":
        role = "padding_mask"
    elif "segment_ids" in lowered:
        role = "segment_ids"
    elif "positions" in lowered and "int" in dtype:
        role = "positions"
    elif "int" in dtype or _feeds_embedding(model, view, name):
        role = "ids"
    else:
        role = "features"
    return InputSlot(
        name,
        shape,
        dtype,
        role,
        _vocabulary(model, view, name, shape[1] if len(shape) == 2 else None) if role == "ids" else _DEFAULT_VOCABULARY,
    )


def _feeds_embedding(model, view, name: str) -> bool:
    """A float Input that carries ids (`Input(shape=(200,))` into an `Embedding`, or into a
    custom layer that holds one, as keras-io's `TokenAndPositionEmbedding` does)."""
    if view is None:
        return False
    for edge in view.consumers(name):
        consumer = view.layer(edge.target)
        if consumer is None:
            continue
        if consumer.is_embedding:
            return True
        live = _live_layer(model, consumer.name.rsplit("/", 1)[-1])
        if live is not None and any(type(inner).__name__ in EMBEDDING_CLASSES for inner in every_layer(live)):
            return True
    return False


def _live_layer(model, name: str):
    try:
        return model.get_layer(name)
    except (ValueError, AttributeError):
        return None


def first_embedding(view, input_name: str):
    """The embedding table nearest downstream of the named model input; failing that (an
    input the view cannot place), the model's first embedding."""
    if view is None:
        return None
    found = next((layer for layer in view.downstream(input_name) if layer.is_embedding), None)
    return found or next((layer for layer in view.layers if layer.is_embedding), None)


def _vocabulary(model, view, name: str, length: int | None = None) -> int:
    """Ids stay inside the table they index: the one downstream of this input, or, where the
    view cannot place the input (a subclassed model), the smallest table of the model."""
    table = first_embedding(view, name) if view is not None and view.edges else None
    input_dim = table.config.get("input_dim") if table is not None else None
    if isinstance(input_dim, int):
        return input_dim
    tables = [
        layer
        for layer in every_layer(model)
        if type(layer).__name__ in EMBEDDING_CLASSES and isinstance(getattr(layer, "input_dim", None), int)
    ]
    # A token table is named for what it holds (KerasHub's `token_embedding`); beside it, a
    # segment table's ids are not the input's. Otherwise the smallest table bounds them all.
    named = [layer for layer in tables if any(word in layer.name for word in ("token", "word"))]
    if named:
        return min(int(layer.input_dim) for layer in named)
    # A table indexed by position (keras-io's TokenAndPositionEmbedding holds it as `pos_emb`,
    # often with exactly as many rows as the input has positions) bounds no token id.
    by_position = _position_tables(model)
    tables = [layer for layer in tables if layer.input_dim != length and id(layer) not in by_position] or tables
    return min(int(layer.input_dim) for layer in tables) if tables else _DEFAULT_VOCABULARY


def _position_tables(model) -> set[int]:
    """ids of the embedding layers that a layer holds under a name that says positions."""
    found = set()
    for owner in (model, *every_layer(model)):
        for attribute, value in vars(owner).items():
            if "pos" in attribute.lower() and type(value).__name__ in EMBEDDING_CLASSES:
                found.add(id(value))
    return found
