"""Keras model configs (Keras 3 and Keras 2 dialects) to layers, edges and compile config.

Pure JSON reading: nothing in the config is deserialized into live objects, and a Lambda's
code stays an opaque string. Nested models (a Sequential inside a functional model, a model
used as a layer) are walked: their layers are named `outer/inner`, and the edges into and
out of them are wired to the inner layers that actually receive and produce the tensors.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, TypeGuard

from nandoctor.analysis.keras_facts import MODEL_CLASSES
from nandoctor.errors import UnreadableFile
from nandoctor.view import CompileConfig, Edge, Layer, LossSpec, ModelView

_MAX_DEPTH = 32


@dataclass
class ParsedModel:
    layers: list[Layer] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    # Where Keras 3 stores each layer's variables in `model.weights.h5`.
    h5_paths: dict[str, str] = field(default_factory=dict)


@lru_cache(maxsize=1024)  # three regular expressions per layer, on a few class names repeated
def to_snake_case(name: str) -> str:
    """Keras's own `naming.to_snake_case`, which names layer groups in weights files."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def is_model_entry(entry: dict[str, Any]) -> bool:
    config = entry.get("config")
    if entry.get("class_name") not in MODEL_CLASSES:
        return False
    return isinstance(config, list) or (isinstance(config, dict) and "layers" in config)


def parse_model(entry: Any, *, prefix: str = "", h5_prefix: str = "", depth: int = 0) -> ParsedModel:
    """Layers and edges of the model serialized as `entry` (`{"class_name", "config", ...}`)."""
    if depth > _MAX_DEPTH:
        raise UnreadableFile(f"model config nests deeper than {_MAX_DEPTH} levels")
    if not isinstance(entry, dict) or not isinstance(entry.get("class_name"), str):
        raise UnreadableFile("model config has no class_name: not a Keras model")
    if not is_model_entry(entry):
        return _parse_opaque_model(entry, prefix)
    config = entry["config"]
    entries = config if isinstance(config, list) else config.get("layers")
    if not isinstance(entries, list) or not all(isinstance(item, dict) for item in entries):
        raise UnreadableFile("model config's `layers` is not a list of layer objects")
    if entry["class_name"] == "Sequential" or isinstance(config, list):
        return _Builder(prefix, h5_prefix, depth).sequential(entries)
    return _Builder(prefix, h5_prefix, depth).functional(entries, config)


def model_view(entry: Any, compile_config: Any, *, path: str, format: str) -> tuple[ModelView, ParsedModel]:
    """The view of a model config (with its Keras 3 `compile_config` or Keras 2
    `training_config`), and the parse, which also says where Keras 3 stores each layer's weights."""
    parsed = parse_model(entry)
    view = ModelView(
        path=path,
        format=format,
        layers=parsed.layers,
        edges=parsed.edges,
        inputs=parsed.inputs,
        outputs=parsed.outputs,
        compile=parse_compile(compile_config, parsed.outputs),
        model_class=entry.get("class_name"),
        model_name=(entry.get("config") or {}).get("name") if isinstance(entry.get("config"), dict) else None,
    )
    return view, parsed


def _parse_opaque_model(entry: dict[str, Any], prefix: str) -> ParsedModel:
    """A subclassed model: its class is known, its graph is code the scan cannot see."""
    config = _dict_at(entry, "config")
    name = prefix + str(entry.get("name") or config.get("name") or to_snake_case(entry["class_name"]))
    layer = _make_layer(entry, name, parent=None)
    layer.is_model = True
    return ParsedModel(layers=[layer], inputs=[name], outputs=[name], h5_paths={name: ""})


# Packages whose registered classes are Keras's, KerasHub's or nandoctor's own.
_KNOWN_PACKAGES = {
    "keras": "keras",
    "keras_hub": "keras_hub",
    "keras_nlp": "keras_nlp",
    "nandoctor": "nandoctor.layers",
}


def _class_of(entry: dict[str, Any]) -> tuple[str, str | None, str | None]:
    """(class name, module, registered name). The legacy `.h5` writer of Keras 3 names a
    registered class `package>Class` and no module: `nandoctor>TiedEmbedding` is nandoctor's
    TiedEmbedding, `keras_hub>GPT2Backbone` KerasHub's, any other package the user's."""
    class_name = str(entry.get("class_name"))
    module = entry.get("module") if isinstance(entry.get("module"), str) else None
    registered = entry.get("registered_name") if isinstance(entry.get("registered_name"), str) else None
    if ">" in class_name:
        package, _, short = class_name.rpartition(">")
        return short, module or _KNOWN_PACKAGES.get(package), registered or class_name
    return class_name, module, registered


def _dict_at(entry: dict[str, Any], key: str) -> dict[str, Any]:
    """`entry[key]` when it is a dict; {} when it is missing or anything else."""
    value = entry.get(key)
    return value if isinstance(value, dict) else {}


def _make_layer(entry: dict[str, Any], name: str, parent: str | None) -> Layer:
    config = entry.get("config")
    class_name, module, registered = _class_of(entry)
    return Layer(
        name=name,
        class_name=class_name,
        config=config if isinstance(config, dict) else {},
        module=module,
        registered_name=registered,
        parent=parent,
        is_model=entry.get("class_name") in MODEL_CLASSES,
        build_config=_dict_at(entry, "build_config"),
    )


def _entry_name(entry: dict[str, Any]) -> str:
    config = _dict_at(entry, "config")
    name = entry.get("name") or config.get("name")
    if not isinstance(name, str) or not name:
        raise UnreadableFile(f"a {entry.get('class_name')} layer in the config has no name")
    return name


class _Builder:
    def __init__(self, prefix: str, h5_prefix: str, depth: int):
        self.prefix = prefix
        self.h5_prefix = h5_prefix
        self.depth = depth
        self.model = ParsedModel()
        self.nested: dict[str, ParsedModel] = {}
        self.used_h5_names: dict[str, int] = {}
        self.local_names: set[str] = set()

    def add(self, entry: dict[str, Any], *, saved_in_layers: bool = True) -> str:
        local = _entry_name(entry)
        if local in self.local_names:
            raise UnreadableFile(f"model config names two layers {local!r}")
        self.local_names.add(local)
        name = self.prefix + local
        h5_path = ""
        if saved_in_layers:
            h5_path = f"{self.h5_prefix}layers/{self._unique(to_snake_case(str(entry['class_name'])))}"
        layer = _make_layer(entry, name, parent=self.prefix.rstrip("/") or None)
        self.model.layers.append(layer)
        self.model.h5_paths[name] = h5_path
        if is_model_entry(entry):
            inner = parse_model(entry, prefix=name + "/", h5_prefix=h5_path + "/", depth=self.depth + 1)
            self.nested[name] = inner
            self.model.layers.extend(inner.layers)
            self.model.edges.extend(inner.edges)
            self.model.h5_paths.update(inner.h5_paths)
        return name

    def _unique(self, base: str) -> str:
        # Keras's `_get_unique_name`: the first is `dense`, then `dense_1`, `dense_2`...
        if base in self.used_h5_names:
            self.used_h5_names[base] += 1
            return f"{base}_{self.used_h5_names[base]}"
        self.used_h5_names[base] = 0
        return base

    def output_of(self, name: str, tensor_index: int = 0) -> str:
        inner = self.nested.get(name)
        if inner is None or not inner.outputs:
            return name
        return inner.outputs[min(tensor_index, len(inner.outputs) - 1)]

    def inputs_of(self, name: str, argument: str) -> list[str]:
        """The layers inside nested model `name` that receive the tensor passed as `argument`.

        Keras 2 passes a model's inputs as positional arguments (`0`, `1`); Keras 3 as one
        list (`0.0`, `0.1`) or one dict keyed by input name (`0.left_in`).
        """
        inner = self.nested.get(name)
        if inner is None or not inner.inputs:
            return [name]
        parts = argument.split(".")
        if len(parts) > 1 and parts[0] == "0":
            key = parts[1]
            if key.isdigit() and int(key) < len(inner.inputs):
                return [inner.inputs[int(key)]]
            named = [receiver for receiver in inner.inputs if receiver.rsplit("/", 1)[-1] == key]
            if named:
                return named
        elif parts[0].isdigit() and int(parts[0]) < len(inner.inputs):
            return [inner.inputs[int(parts[0])]]
        return inner.inputs[:1]

    def connect(
        self, source: str, tensor_index: int, target: str, argument: str, kwargs: dict, spec: dict | None = None
    ) -> None:
        spec = spec or {}
        shape = spec.get("shape")
        for receiver in self.inputs_of(target, argument):
            self.model.edges.append(
                Edge(
                    self.output_of(source, tensor_index),
                    receiver,
                    argument,
                    kwargs,
                    shape=tuple(shape) if isinstance(shape, (list, tuple)) else None,
                    dtype=spec.get("dtype") if isinstance(spec.get("dtype"), str) else None,
                )
            )

    def sequential(self, entries: list[dict[str, Any]]) -> ParsedModel:
        previous: str | None = None
        for entry in entries:
            # `Sequential.layers` omits the InputLayer, and so does the weights file.
            name = self.add(entry, saved_in_layers=entry.get("class_name") != "InputLayer")
            if previous is None:
                self.model.inputs = self.inputs_of(name, "0")
            else:
                self.connect(previous, 0, name, "0", {})
            previous = name
        self.model.outputs = [self.output_of(previous)] if previous else []
        return self.model

    def functional(self, entries: list[dict[str, Any]], config: dict[str, Any]) -> ParsedModel:
        names = {_entry_name(entry): self.add(entry) for entry in entries}
        for entry in entries:
            target = names[_entry_name(entry)]
            nodes = entry.get("inbound_nodes") or []
            if not isinstance(nodes, list):
                raise UnreadableFile(f"layer {target!r} has malformed inbound_nodes")
            for node in nodes:
                for argument, (source, tensor_index, spec), kwargs in _node_inputs(node):
                    if source not in names:
                        raise UnreadableFile(f"layer {target!r} takes input from unknown layer {source!r}")
                    self.connect(names[source], tensor_index, target, argument, kwargs, spec)
        self.model.inputs = [
            receiver
            for source, _ in _tensor_refs_list(config.get("input_layers"))
            if source in names
            for receiver in self.inputs_of(names[source], "0")
        ]
        self.model.outputs = [
            self.output_of(names[source], index)
            for source, index in _tensor_refs_list(config.get("output_layers"))
            if source in names
        ]
        return self.model


def _is_ref(value: Any) -> TypeGuard[list[Any]]:
    """A Keras 2 tensor reference: `[layer_name, node_index, tensor_index]`."""
    return (
        isinstance(value, list)
        and len(value) == 3
        and isinstance(value[0], str)
        and all(isinstance(item, int) for item in value[1:])
    )


def _tensor_refs_list(value: Any) -> list[tuple[str, int]]:
    """`input_layers`/`output_layers`: one ref, a list of refs, or a dict of refs."""
    if isinstance(value, dict):
        value = list(value.values())
    if _is_ref(value):
        return [(value[0], value[2])]
    if isinstance(value, list):
        return [(item[0], item[2]) for item in value if _is_ref(item)]
    return []


def _node_inputs(node: Any):
    """Yield `(argument, (layer, tensor_index, spec), call_kwargs)` for each tensor a call
    took; `spec` holds the tensor's `shape` and `dtype` where Keras 3 recorded them."""
    if isinstance(node, dict):  # Keras 3: {"args": [...], "kwargs": {...}}
        args = node.get("args") or []
        kwargs = node.get("kwargs") or {}
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise UnreadableFile("malformed inbound node in model config")
        plain = {key: value for key, value in kwargs.items() if not list(_keras3_refs(value, key))}
        for index, arg in enumerate(args):
            for argument, ref in _keras3_refs(arg, str(index)):
                yield argument, ref, plain
        for key, value in kwargs.items():
            for argument, ref in _keras3_refs(value, key):
                yield argument, ref, plain
    elif isinstance(node, list):  # Keras 2: [[layer, node_index, tensor_index, kwargs], ...]
        if node and isinstance(node[0], str):
            # A TFOpLambda or SlicingOpLambda node (`h + e`, `x[:, 0]` on tensors) is one
            # reference, `[layer, node_index, tensor_index, kwargs]`, not a list of them.
            node = [node]
        merged: dict[str, Any] = {}
        for item in node:
            if isinstance(item, list) and len(item) > 3 and isinstance(item[3], dict):
                merged.update({k: v for k, v in item[3].items() if not _is_ref(v)})
        for index, item in enumerate(node):
            if not (isinstance(item, list) and len(item) >= 3 and isinstance(item[0], str)):
                raise UnreadableFile("malformed inbound node in model config")
            yield str(index), (item[0], item[2] if isinstance(item[2], int) else 0, None), merged
            if len(item) > 3 and isinstance(item[3], dict):
                for key, value in item[3].items():
                    if _is_ref(value):
                        yield key, (value[0], value[2], None), merged
    else:
        raise UnreadableFile("malformed inbound node in model config")


def _keras3_refs(value: Any, label: str):
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            spec = _dict_at(value, "config")
            history = spec.get("keras_history")
            if _is_ref(history):
                yield label, (history[0], history[2], spec)
            return
        for key, item in value.items():
            yield from _keras3_refs(item, f"{label}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _keras3_refs(item, f"{label}.{index}")


# Loss names as strings and their canonical spelling.
_LOSS_ALIASES = {
    "mse": "mean_squared_error",
    "mae": "mean_absolute_error",
    "mape": "mean_absolute_percentage_error",
    "msle": "mean_squared_logarithmic_error",
    "kld": "kl_divergence",
    "kullback_leibler_divergence": "kl_divergence",
    "bce": "binary_crossentropy",
    "cce": "categorical_crossentropy",
    "scce": "sparse_categorical_crossentropy",
}


def parse_loss(value: Any) -> LossSpec | None:
    if value is None:
        return None
    if isinstance(value, str):
        name = to_snake_case(value) if any(c.isupper() for c in value) else value
        return LossSpec(_LOSS_ALIASES.get(name, name))
    if isinstance(value, dict) and isinstance(value.get("class_name"), str):
        module = value.get("module")
        config = value.get("config")
        # Keras 3 writes `loss=keras.losses.categorical_crossentropy` as a function of module
        # "builtins" named by its config; a user's function carries its own module.
        custom = isinstance(module, str) and not module.startswith(("keras", "tf_keras", "builtins"))
        if value["class_name"] == "function" and isinstance(config, str):
            return LossSpec(_LOSS_ALIASES.get(config, config), custom=custom)
        name = to_snake_case(value["class_name"])
        config = config if isinstance(config, dict) else {}
        return LossSpec(_LOSS_ALIASES.get(name, name), bool(config.get("from_logits", False)), config, custom)
    return None


def parse_compile(compile_config: Any, outputs: list[str]) -> CompileConfig | None:
    """Keras 3 `compile_config` or Keras 2 `training_config`, losses keyed by output layer."""
    if not isinstance(compile_config, dict):
        return None
    loss = compile_config.get("loss")
    losses: dict[str, LossSpec] = {}
    pairs: Iterable[tuple[str, Any]]
    if isinstance(loss, list):
        pairs = zip(outputs, loss)
    elif isinstance(loss, dict) and "class_name" not in loss:
        by_local_name = {output.rsplit("/", 1)[-1]: output for output in outputs}
        loss_by_output: dict[str, Any] = loss  # keyed by output names, local or full
        pairs = ((by_local_name.get(key, key), value) for key, value in loss_by_output.items())
    else:
        pairs = ((output, loss) for output in outputs)
    for output, value in pairs:
        spec = parse_loss(value)
        if spec is not None:
            losses[output] = spec
    optimizer = compile_config.get("optimizer") or compile_config.get("optimizer_config")
    return CompileConfig(losses=losses, optimizer=optimizer if isinstance(optimizer, dict) else None)
