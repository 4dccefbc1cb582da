"""A ModelView of a live Keras model: the model the user already built, or one loaded on
request. Its config is what `model.save` would write, so the same parser reads it; its
weights are the model's own variables. Imports Keras, which the caller already has."""

from __future__ import annotations

import json

import numpy as np

from nandoctor.loaders.keras_config import model_view
from nandoctor.view import Layer, ModelView, Weight
from nandoctor.view.array_sources import ArrayInMemory


def view_of_model(model) -> ModelView:
    import keras

    entry = _serialized(model, keras)
    view, _ = model_view(entry, entry.get("compile_config"), path=f"<model {model.name}>", format="live")
    # A variable shared by reference (a hand-written tie tracks the embedding layer) belongs
    # to the first layer that holds it, as a saved file stores it once: the second holder
    # would otherwise look like a layer with an equal copy of its own.
    seen: set[int] = set()
    if len(view.layers) == 1 and view.layers[0].is_model and not view.edges:
        # A subclassed model: its graph is code, but its tracked layers and weights are real.
        view.layers.extend(_tracked_layers(model, view.layers[0].name, seen))
    for layer in view.layers:
        live = _find(model, layer.name)
        if live is not None and not layer.weights and not layer.is_model:
            layer.weights = _weights_of(live, layer.name, seen)
    return view


def _serialized(model, keras) -> dict:
    """The model's config as `model.save` would write it, through JSON (tuples become lists,
    and the parser of saved configs reads the live one unchanged). A subclassed model without
    `get_config` cannot be serialized: its class and compile configuration stand in, and its
    tracked layers and weights are read from the live object."""
    try:
        return json.loads(json.dumps(keras.saving.serialize_keras_object(model), default=repr))
    except Exception:
        entry = {"class_name": type(model).__name__, "module": type(model).__module__, "config": {"name": model.name}}
        try:
            compile_config = model.get_compile_config() if getattr(model, "compiled", False) else None
            entry["compile_config"] = json.loads(json.dumps(compile_config, default=repr))
        except Exception:  # a loss or metric that cannot be serialized either: judged live only
            pass
        return entry


def _find(model, name: str):
    current = model
    for part in name.split("/"):
        try:
            current = current.get_layer(part)
        except (ValueError, AttributeError):
            return None
    return current


def _weights_of(live, layer_name: str, seen: set[int]) -> list[Weight]:
    """The layer's variables that no earlier layer holds (`seen` collects their ids)."""
    weights = []
    for variable in live.weights:
        if id(variable) in seen:
            continue
        seen.add(id(variable))
        path = getattr(variable, "path", variable.name)
        prefix = f"{live.name}/"
        name = path[len(prefix) :] if path.startswith(prefix) else variable.name
        values = np.asarray(variable.numpy() if hasattr(variable, "numpy") else variable)
        source = ArrayInMemory(values)
        weights.append(Weight(name, layer_name, tuple(values.shape), source.logical_dtype, source))
    return weights


def _tracked_layers(model, prefix: str, seen: set[int]) -> list[Layer]:
    layers = []
    for live in model.layers:
        try:
            config = live.get_config()
        except Exception:  # a custom layer without get_config: its class is still known
            config = {}
        name = f"{prefix}/{live.name}"
        layer = Layer(
            name=name, class_name=type(live).__name__, config=config, module=type(live).__module__, parent=prefix
        )
        layer.weights = _weights_of(live, name, seen)
        layers.append(layer)
    return layers
