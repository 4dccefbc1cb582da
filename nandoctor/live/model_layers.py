"""Every layer of a live Keras model, nested models and layers inside custom layers included.

Keras has no public walk over the layers a custom layer tracks as attributes (a
`TransformerBlock` holding its `MultiHeadAttention`); `Layer._flatten_layers` is that walk,
stable through Keras 3. It is called here and nowhere else, with a public fallback.
"""

from __future__ import annotations

from collections.abc import Iterator


def every_layer(model) -> Iterator:
    """The model's layers, depth first, each once, the model itself excluded."""
    walk = getattr(model, "_flatten_layers", None)
    if walk is not None:
        yield from walk(include_self=False, recursive=True)
        return
    seen: set[int] = set()
    stack = list(reversed(getattr(model, "layers", [])))
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        yield layer
        stack.extend(reversed(getattr(layer, "layers", [])))


def layer_named(model, name: str):
    """The layer called `name` anywhere inside `model`, or None."""
    return next((layer for layer in every_layer(model) if layer.name == name), None)
