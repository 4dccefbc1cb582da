"""Finding and changing a layer's entry in a saved model config (`config.json`, or a legacy
`.h5` file's `model_config`), with no Keras: the JSON as Keras 3 and Keras 2 write it."""

from __future__ import annotations

from typing import Any

from nandoctor.fix.prescription import CannotFix


def layer_entry(model: dict[str, Any], name: str | None) -> dict[str, Any]:
    """The entry of layer `name` (`outer/inner` inside a nested model) in a model config."""
    if name is None:
        raise CannotFix("the finding names no layer")
    entry = model
    for part in name.split("/"):
        found = next((child for child in _children(entry) if entry_name(child) == part), None)
        if found is None:
            raise CannotFix(f"the config has no layer {name!r}")
        entry = found
    return entry


def entry_name(entry: dict[str, Any]) -> str | None:
    config = entry.get("config")
    return entry.get("name") or (config.get("name") if isinstance(config, dict) else None)


def _children(entry: dict[str, Any]) -> list[dict[str, Any]]:
    config = entry.get("config")
    layers = config.get("layers") if isinstance(config, dict) else config
    return [child for child in layers if isinstance(child, dict)] if isinstance(layers, list) else []


def set_call_argument(entry: dict[str, Any], key: str, value: Any) -> int:
    """Set a keyword argument of every call of a layer in a functional config; the number of
    calls changed. Keras 3 writes a call as `{"args": [...], "kwargs": {...}}`; Keras 2 as a
    list of inbound tensors whose first carries the keyword arguments."""
    nodes = entry.get("inbound_nodes")
    if not isinstance(nodes, list) or not nodes:
        raise CannotFix(f"layer {entry_name(entry)!r} has no recorded calls to change (not a functional model)")
    for node in nodes:
        if isinstance(node, dict):
            kwargs = node.setdefault("kwargs", {})
        elif isinstance(node, list) and node and isinstance(node[0], list) and len(node[0]) >= 4:
            kwargs = node[0][3]
        else:
            raise CannotFix(f"a call of layer {entry_name(entry)!r} is recorded in a form nandoctor does not know")
        if not isinstance(kwargs, dict):
            raise CannotFix(f"a call of layer {entry_name(entry)!r} has no keyword arguments to change")
        kwargs[key] = value
    return len(nodes)
