"""Mapping stored tensors to the layers Keras names, for both HDF5 weight layouts.

Keras 3 (`model.weights.h5` in a `.keras`, and `.weights.h5`) stores a layer's variables
at `layers/<snake_case class>[_N]/vars/<index>`, numbered in the order of `model.layers`;
Keras 3.15 also writes the layer's name as an attribute of `vars`, which is preferred when
present. Keras 2 and legacy `.h5` files list `layer_names`, and each layer group lists its
`weight_names` (`dense/kernel:0`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache

from nandoctor.analysis.keras_facts import KERAS_CLASS_NAMES, is_known_class
from nandoctor.errors import UnreadableFile
from nandoctor.loaders.h5_datasets import attribute_strings, attribute_text
from nandoctor.loaders.h5_structure import StoredDataset, StoredGroup
from nandoctor.view import Layer, Weight
from nandoctor.view.array_sources import ArraySource

SourceFactory = Callable[[StoredDataset], ArraySource]

_KERNEL_AND_BIAS = ("kernel", "bias")
_VARIABLE_NAMES = {
    "Embedding": ("embeddings",),
    "MaskedEmbedding": ("embeddings",),
    "TiedEmbedding": ("embeddings",),
    "PositionEmbedding": ("position_embeddings",),
    "TemporalEncoding": ("position_embeddings",),
    "MemoryHop": ("H",),
    "Dense": _KERNEL_AND_BIAS,
    "EinsumDense": _KERNEL_AND_BIAS,
    **{f"Conv{d}D": _KERNEL_AND_BIAS for d in (1, 2, 3)},
    **{f"Conv{d}DTranspose": _KERNEL_AND_BIAS for d in (1, 2, 3)},
}


def variable_names(layer: Layer, count: int) -> list[str]:
    """Names of a Keras 3 layer's own variables, in the order Keras saves them."""
    names: tuple[str, ...] | None = _VARIABLE_NAMES.get(layer.class_name)
    if layer.class_name == "ReversibleEmbedding":
        tied = layer.config.get("tie_weights", True)
        names = ("embeddings",) if tied else ("embeddings", "reverse_embeddings")
    if layer.class_name in ("LayerNormalization", "BatchNormalization"):
        names = tuple(
            name
            for name, present in (
                ("gamma", layer.config.get("scale", True)),
                ("beta", layer.config.get("center", True)),
            )
            if present
        )
        if layer.class_name == "BatchNormalization":
            names += ("moving_mean", "moving_variance")
    if names is None or len(names) != count:
        return [str(index) for index in range(count)]
    return list(names)


def numeric_key(key: str) -> tuple[int, str]:
    return (int(key), key) if key.isdigit() else (1 << 62, key)


def saved_name(group: StoredGroup) -> str | None:
    """The name Keras gave the layer or model saved in `group` (Keras 3.15 and later)."""
    return attribute_text(group.group("vars"), "name")


def attach_keras3_weights(
    layers: list[Layer], h5_paths: dict[str, str], root: StoredGroup, make_source: SourceFactory
) -> None:
    for layer in layers:
        path = h5_paths.get(layer.name)
        if not path:
            continue
        group = _locate(root, path, layer.name.rsplit("/", 1)[-1])
        if group is not None:
            layer.weights = _collect(group, layer, make_source)


def _locate(root: StoredGroup, path: str, local_name: str) -> StoredGroup | None:
    """The group at `path`, or the sibling whose saved name says it is `local_name`."""
    group = root.group(path)
    saved = saved_name(group) if group is not None else None
    if group is not None and saved in (None, local_name):
        return group
    parent = root.group(path.rsplit("/", 1)[0]) if "/" in path else root
    if parent is not None:
        for sibling in parent.members.values():
            if isinstance(sibling, StoredGroup) and saved_name(sibling) == local_name:
                return sibling
    return group


def _collect(group: StoredGroup, layer: Layer, make_source: SourceFactory, prefix: str = "") -> list[Weight]:
    """A layer's own variables, then those of its sub-layers (an attention's query dense)."""
    weights = own_weights(group, layer, make_source, prefix)
    for key in sorted(group.members):
        if key == "vars" or (key == "layers" and layer.is_model):
            continue
        sub = group.members[key]
        if isinstance(sub, StoredGroup):
            label = saved_name(sub) or key
            weights.extend(_collect(sub, layer, make_source, f"{prefix}{label}/"))
    return weights


def own_weights(group: StoredGroup, layer: Layer, make_source: SourceFactory, prefix: str = "") -> list[Weight]:
    """The variables Keras saved for the layer or model of `group` itself (its `vars`)."""
    variables = group.group("vars")
    if variables is None:
        return []
    keys = sorted(variables.members, key=numeric_key)
    names = variable_names(layer, len(keys)) if not prefix else keys
    weights = []
    for key, name in zip(keys, names):
        dataset = variables.members[key]
        if isinstance(dataset, StoredDataset):
            weights.append(_weight(prefix + name, layer.name, dataset, make_source))
    return weights


def _weight(name: str, layer: str, dataset: StoredDataset, make_source: SourceFactory) -> Weight:
    source = make_source(dataset)
    return Weight(name, layer, tuple(source.shape), source.logical_dtype, source, location=dataset.name)


def keras3_layers_from_tree(
    root: StoredGroup, make_source: SourceFactory, prefix: str = "", module: str | None = None
) -> list[Layer]:
    """Layers found in a Keras 3 weights tree alone, with no config to name them: a
    `.weights.h5`, or a subclassed model, whose layers Keras tracks by attribute name.
    `module` is the enclosing model's, when it is a library's (a KerasHub backbone's layers
    are KerasHub's or Keras's classes, known by the names their weight groups carry).

    Keras saves each layer as a group holding `vars` (its variables and, since 3.15, its
    name), under the attribute that holds it; a list, tuple or dict of layers is a group
    without `vars` whose members are named for their class (`block`, `block_1`), as a
    model's `layers` are. A layer of Keras's own (or the library's) is one layer, its
    sub-layers' variables included (an attention's query dense); any other layer's
    sub-layers are layers of their own, named by the path of names Keras gave them
    (`net/blk1/dense_1`, as `variable.path` names them), so that a finding names the layer
    whose weight it is."""
    return list(_layers_below(root, _Walk(make_source, module, set()), prefix, "", by_class=False))


@dataclass
class _Walk:
    make_source: SourceFactory
    module: str | None
    taken: set[str]  # layer names given so far: a name the file repeats is told apart by its path


def _layers_below(group: StoredGroup, walk: _Walk, owner: str, path: str, by_class: bool) -> Iterator[Layer]:
    """The layers saved inside `group`: `owner` is the enclosing layer's name (with its
    slash), `path` the containers' keys since it, `by_class` whether the keys are class
    names (a container's members) or attribute names."""
    for key, child in group.members.items():
        if not isinstance(child, StoredGroup) or key in ("vars", "optimizer"):
            continue
        if key == "layers":  # a model's layer list: members named for their class, the list not named
            yield from _layers_below(child, walk, owner, path, by_class=True)
        elif "vars" in child.members:
            yield from _tree_layer(child, walk, owner, path + key, by_class)
        else:  # a list, tuple or dict of layers
            yield from _layers_below(child, walk, owner, f"{path}{key}/", by_class=True)


def _tree_layer(group: StoredGroup, walk: _Walk, owner: str, path: str, by_class: bool) -> Iterator[Layer]:
    key = path.rsplit("/", 1)[-1]
    saved = saved_name(group)
    if by_class:
        class_name = class_from_path(key)
    else:  # an attribute's name says nothing of its class; the name Keras gave the layer may
        guessed = class_from_path(saved) if saved else None
        class_name = guessed if guessed in KERAS_CLASS_NAMES else "Layer"
    # A name Keras itself has is Keras's class; otherwise the enclosing library's, if any.
    layer_module = "keras.layers" if class_name in KERAS_CLASS_NAMES else walk.module
    is_model = group.group("layers") is not None
    layer = Layer(
        name=_unique_name(walk.taken, owner, saved, path),
        class_name=class_name,
        module=layer_module,
        parent=owner.rstrip("/") or None,
        is_model=is_model,
    )
    whole = class_name != "Layer" and not is_model and is_known_class(class_name, layer_module)
    layer.weights = (_collect if whole else own_weights)(group, layer, walk.make_source)
    yield layer
    if not whole:
        yield from _layers_below(group, walk, layer.name + "/", "", by_class=False)


def _unique_name(taken: set[str], owner: str, saved: str | None, path: str) -> str:
    """The layer's saved name under its owner's; its attribute path where two layers share
    a name (Keras does not require a subclassed model's names to differ)."""
    candidates = ([owner + saved] if saved else []) + [owner + path]
    name = next((candidate for candidate in candidates if candidate not in taken), None)
    count = 2
    while name is None or name in taken:
        name, count = f"{owner}{path}#{count}", count + 1
    taken.add(name)
    return name


_KERAS_SPELLING = {name.lower(): name for name in KERAS_CLASS_NAMES}


@lru_cache(maxsize=1024)  # asked for every group of a weights tree, whose names repeat
def class_from_path(key: str) -> str:
    """The class a Keras 3 weights group is named for (`global_average_pooling1d_2` is
    GlobalAveragePooling1D): Keras's own spelling where the name is Keras's."""
    base = re.sub(r"_\d+$", "", key)
    guessed = "".join(part.capitalize() for part in base.split("_"))
    return _KERAS_SPELLING.get(guessed.lower(), guessed)


def attach_legacy_weights(group: StoredGroup, layers: list[Layer], make_source: SourceFactory) -> list[Layer]:
    """Attach weights listed by `layer_names`/`weight_names`; add layers the config lacks."""
    by_name = {layer.name: layer for layer in layers}
    for layer_name in attribute_strings(group, "layer_names"):
        layer_group = group.group(layer_name)
        if layer_group is None:
            raise UnreadableFile(f"weights of layer {layer_name!r} are listed but missing")
        if layer_name not in by_name:
            by_name[layer_name] = Layer(name=layer_name, class_name="")
            layers.append(by_name[layer_name])
        for weight_name in attribute_strings(layer_group, "weight_names"):
            dataset = layer_group.get(weight_name)
            if not isinstance(dataset, StoredDataset):
                raise UnreadableFile(f"weight {weight_name!r} of layer {layer_name!r} is listed but missing")
            owner, short = _legacy_owner(layer_name, weight_name, by_name)
            by_name[owner].weights.append(_weight(short, owner, dataset, make_source))
    for layer in layers:
        if not layer.class_name:
            layer.class_name = "Embedding" if any(w.name == "embeddings" for w in layer.weights) else "Layer"
    return layers


def _legacy_owner(layer_name: str, weight_name: str, by_name: dict[str, Layer]) -> tuple[str, str]:
    """`inner`, `d_in/kernel:0` -> (`inner/d_in`, `kernel`) when `inner` is a nested model."""
    parts = re.sub(r":\d+$", "", weight_name).split("/")
    if len(parts) > 1 and parts[0] == layer_name:
        parts = parts[1:]
    owner = layer_name
    while len(parts) > 1 and f"{owner}/{parts[0]}" in by_name:
        owner = f"{owner}/{parts[0]}"
        parts = parts[1:]
    return owner, "/".join(parts)
