"""What an output layer computes, as far as the loss cares: its activation and width."""

from __future__ import annotations

from typing import Any

from nandoctor.analysis.keras_facts import ACTIVATION_LAYERS, VALUE_PASSTHROUGH
from nandoctor.view import Layer, ModelView

# Losses that read the model's outputs as probabilities unless `from_logits=True`.
CATEGORICAL_LOSSES = frozenset(
    {"categorical_crossentropy", "sparse_categorical_crossentropy", "categorical_focal_crossentropy"}
)
BINARY_LOSSES = frozenset({"binary_crossentropy", "binary_focal_crossentropy"})


def activation_name(value: Any) -> str:
    """`"relu"`, or Keras 3's serialized `{"class_name": "function", "config": "relu"}`."""
    if value is None:
        return "linear"
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        config = value.get("config")
        if isinstance(config, str):
            return config
        if isinstance(value.get("class_name"), str):
            return value["class_name"].lower()
    return str(value)


def output_activation(view: ModelView, name: str) -> tuple[str, Layer] | None:
    """The activation that last shapes output `name`, and the layer that applies it."""
    layer = view.layer(name)
    seen = set()
    while layer is not None and layer.name not in seen:
        seen.add(layer.name)
        config = wrapped_config(layer)
        if layer.class_name in ACTIVATION_LAYERS:
            return ACTIVATION_LAYERS[layer.class_name], layer
        if "activation" in config:
            return activation_name(config["activation"]), layer
        if layer.class_name not in VALUE_PASSTHROUGH:
            return None
        producers = view.producers(layer.name)
        if len(producers) != 1:
            return None
        layer = view.layer(producers[0].source)
    return None


def wrapped_config(layer: Layer) -> dict[str, Any]:
    """The config that holds the maths: the wrapped layer's for TimeDistributed and Bidirectional."""
    config = layer.config
    if layer.class_name in ("TimeDistributed", "Bidirectional") and isinstance(config.get("layer"), dict):
        return config["layer"].get("config") or {}
    return config


def output_units(view: ModelView, layer: Layer) -> int | None:
    """How many values the activation normalises over: the nearest Dense's `units`."""
    current: Layer | None = layer
    for _ in range(8):
        if current is None:
            return None
        config = wrapped_config(current)
        if isinstance(config.get("units"), int):
            return config["units"]
        producers = view.producers(current.name)
        if len(producers) != 1 or current.class_name not in VALUE_PASSTHROUGH | set(ACTIVATION_LAYERS) | {"Activation"}:
            return None
        current = view.layer(producers[0].source)
    return None
