"""ModelView: the one model representation that rules see.

A view is built by a loader from a file (never running anything stored in it) or, later,
from a live model. It holds layers with their configs, the edges between them with call
arguments, the compile configuration, and weights that are read only when asked for.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

import numpy as np

from nandoctor.analysis.keras_facts import EMBEDDING_CLASSES
from nandoctor.view.array_sources import ArraySource
from nandoctor.view.weight_stats import WeightStats, compute_stats

Answer = TypeVar("Answer")


@dataclass
class Weight:
    """One stored tensor, read lazily in row blocks.

    `shape[0]` is the row axis (a token id for an embedding); the remaining axes are
    flattened into one row. Values are never held whole unless `read()` is called.
    """

    name: str
    layer: str
    shape: tuple[int, ...]
    dtype: str
    source: ArraySource = field(repr=False)
    # Where the file stores it (an HDF5 dataset's path, an archive member, a tensor's key),
    # for `nandoctor fix` to write it back; None for a live model's variables.
    location: str | None = field(default=None, repr=False)
    _stats: WeightStats | None = field(default=None, init=False, repr=False)

    @property
    def size(self) -> int:
        # math.prod, not np.prod: on a shape of two or three numbers it is 30 times faster, and
        # rules ask it of every weight of every file.
        return int(math.prod(self.shape))

    @property
    def nbytes(self) -> int:
        return self.size * self.source.itemsize

    @property
    def rows(self) -> int:
        return self.shape[0] if self.shape else 1

    def blocks(self) -> Iterator[tuple[int, np.ndarray]]:
        """Yield `(first_row, block)`; a block may reuse its buffer, so copy what you keep."""
        return self.source.blocks()

    def read(self) -> np.ndarray:
        return self.source.read()

    def row_labels(self, rows: list[int]) -> list[str] | None:
        return self.source.row_labels(rows)

    def row_norms(self, rows: list[int]) -> np.ndarray:
        """L2 norms of the given rows, read without reading the whole tensor where possible."""
        return _norms(self.source.rows_at(rows))

    def median_row_norm(self, sample: int = 2048) -> float:
        """The median L2 norm of up to `sample` rows spread evenly over the tensor."""
        if not self.rows:
            return 0.0
        if self.rows <= sample:  # every row, the spread below would choose them all: read in one go
            return _median(_norms(self.source.read_rows(0, self.rows)))
        rows = np.unique(np.linspace(0, self.rows - 1, num=sample).astype(np.int64))
        return _median(self.row_norms(rows.tolist()))

    @property
    def computed_stats(self) -> WeightStats | None:
        """The statistics if a pass has already computed them, else None (nothing is read):
        what lets a rule skip a weight cheaply when the scan streamed them all."""
        return self._stats

    def stats(self, progress: Callable[[int], None] | None = None) -> WeightStats:
        """Row and value statistics, computed in one streaming pass and cached."""
        if self._stats is None:
            self._stats = compute_stats(self.source, progress=progress)
        return self._stats


def _norms(rows: np.ndarray) -> np.ndarray:
    values = rows.astype(np.float64)
    return np.sqrt((values * values).sum(axis=1))


def _median(values: np.ndarray) -> float:
    """`np.median(values)` of a vector, to the bit (the mean of the middle two of an even count,
    NaN if any value is NaN or there is none), by one sort: 1.3 us on 100 values where np.median
    takes 6.8 us, and np.median imports numpy.ma on first use (50 ms cold)."""
    ordered = np.sort(values)  # NaN sorts last
    middle = len(ordered) // 2
    if not len(ordered) or np.isnan(ordered[-1]):
        return float("nan")
    if len(ordered) % 2:
        return float(ordered[middle])
    return float((ordered[middle - 1] + ordered[middle]) / 2)


@dataclass
class Layer:
    """A layer as Keras names it. Layers of nested models are named `outer/inner`."""

    name: str
    class_name: str
    config: dict[str, Any] = field(default_factory=dict)
    module: str | None = None
    registered_name: str | None = None
    parent: str | None = None
    is_model: bool = False
    weights: list[Weight] = field(default_factory=list)
    # Keras 3 records the input shape a layer was built with beside its config.
    build_config: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of_matrix(cls, name: str, source, is_table: bool) -> Layer:
        """A bare tensor of a weights-only file (npy, safetensors, a checkpoint, word vectors):
        an embedding table (`EmbeddingMatrix`, its weight `embeddings`) or an `Array`, both
        nandoctor's own names for what has no Keras class."""
        layer = cls(name=name, class_name="EmbeddingMatrix" if is_table else "Array", module="nandoctor.loaders")
        layer.weights = [
            Weight("embeddings" if is_table else "values", name, source.shape, source.logical_dtype, source)
        ]
        return layer

    @property
    def input_shape(self) -> tuple | None:
        shape = self.build_config.get("input_shape") or self.config.get("batch_input_shape")
        return tuple(shape) if isinstance(shape, (list, tuple)) else None

    @property
    def is_embedding(self) -> bool:
        return self.class_name in EMBEDDING_CLASSES or any(w.name == "embeddings" for w in self.weights)

    def embedding_matrix(self) -> Weight | None:
        for weight in self.weights:
            if weight.name == "embeddings":
                return weight
        if self.class_name in EMBEDDING_CLASSES and self.weights:
            return self.weights[0]
        return None


@dataclass(frozen=True)
class Edge:
    """`source`'s output feeds `target`, as positional argument or keyword `argument`.

    `call_kwargs` holds the non-tensor keyword arguments of that call, such as
    `use_causal_mask=True` or `training=False`. `shape` and `dtype` describe the tensor
    where the file records them (Keras 3 does; Keras 2 does not).
    """

    source: str
    target: str
    argument: str = "inputs"
    call_kwargs: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    shape: tuple[int | None, ...] | None = field(default=None, hash=False, compare=False)
    dtype: str | None = field(default=None, hash=False, compare=False)


@dataclass(frozen=True)
class LossSpec:
    """One loss as compiled: its canonical snake-case name and whether it takes logits."""

    name: str
    from_logits: bool = False
    config: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    custom: bool = False


@dataclass
class CompileConfig:
    """What `model.compile` stored: losses per output layer, and the optimizer config."""

    losses: dict[str, LossSpec] = field(default_factory=dict)
    optimizer: dict[str, Any] | None = None


# Compared and hashed by identity: a view holds open files, and the live checks of one
# `check()` share what they found about the model by its view.
@dataclass(eq=False)
class ModelView:
    """Layers, edges, compile configuration and lazy weights of one model or matrix file."""

    path: str
    format: str
    layers: list[Layer] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    compile: CompileConfig | None = None
    model_class: str | None = None
    model_name: str | None = None  # the name its author gave it: weak evidence of what it is
    has_config: bool = True
    # The length the model's own preprocessing pads or cuts every sequence to, where the file
    # says (a KerasHub preprocessor's `sequence_length`): the positions a position table must cover.
    fed_sequence_length: int | None = None
    # What the loader could not read or judge, in words (weights absent, a format's limits).
    notes: list[str] = field(default_factory=list)
    _closers: list[Callable[[], None]] = field(default_factory=list, repr=False)
    _answers: dict[tuple, Any] = field(default_factory=dict, repr=False)

    # Indexes built on first use: loaders finish the layer and edge lists before rules run.
    @cached_property
    def _by_name(self) -> dict[str, Layer]:
        return {layer.name: layer for layer in self.layers}

    @cached_property
    def _edges_from(self) -> dict[str, list[Edge]]:
        return _group_edges(self.edges, lambda edge: edge.source)

    @cached_property
    def _edges_to(self) -> dict[str, list[Edge]]:
        return _group_edges(self.edges, lambda edge: edge.target)

    def layer(self, name: str) -> Layer | None:
        return self._by_name.get(name)

    def shared(self, question: Callable[..., Answer], *arguments: Hashable) -> Answer:
        """`question(self, *arguments)`, worked out on the first call and remembered: what
        several rules ask of one model (its position tables, where an embedding's padding goes,
        each layer's dtype policy) is worked out once per file, not once per rule. The answer is
        shared, so it must not be changed; like the indexes above, it assumes the loader has
        finished the view."""
        key = (question, *arguments)
        try:
            return self._answers[key]
        except KeyError:  # the first ask; every later one is one lookup
            answer = self._answers[key] = question(self, *arguments)
            return answer

    def weights(self) -> Iterator[Weight]:
        # Gathered once: several rules walk every weight, and a tuple iterates faster than a
        # generator over each layer's list.
        return iter(self.shared(_all_weights))

    def embeddings(self) -> tuple[Layer, ...]:
        """The layers that are embeddings (`Layer.is_embedding`), in order: the rules that judge
        embeddings look at these, not at every layer."""
        return self.shared(_embeddings)

    def consumers(self, name: str) -> list[Edge]:
        return self._edges_from.get(name, [])

    def producers(self, name: str) -> list[Edge]:
        return self._edges_to.get(name, [])

    def downstream(self, name: str) -> Iterator[Layer]:
        """Every layer reachable from `name`'s output, nearest first (breadth first)."""
        # Several rules walk down from each embedding: the walk is made once.
        return iter(self.shared(_reachable_from, name))

    def path_between(self, source: str, target: str) -> list[str] | None:
        """The shortest chain of layer names from `source` to `target`, both included."""
        parents: dict[str, str | None] = {source: None}
        queue = deque([source])
        while queue:
            current = queue.popleft()
            if current == target:
                chain = [current]
                while parents[chain[-1]] is not None:
                    chain.append(parents[chain[-1]])  # type: ignore[arg-type]
                return chain[::-1]
            for edge in self.consumers(current):
                if edge.target not in parents:
                    parents[edge.target] = current
                    queue.append(edge.target)
        return None

    def input_spec(self, layer: Layer) -> tuple[tuple | None, str | None]:
        """The `(shape, dtype)` of the tensor `layer` receives, from its edge (Keras 3) or from
        the InputLayer feeding it (both dialects)."""
        for edge in self.producers(layer.name):
            if edge.shape is not None:
                return edge.shape, edge.dtype
            producer = self.layer(edge.source)
            if producer is not None and producer.class_name == "InputLayer":
                config = producer.config
                shape = config.get("batch_shape") or config.get("batch_input_shape")
                return (tuple(shape) if isinstance(shape, (list, tuple)) else None), config.get("dtype")
        shape = layer.config.get("batch_input_shape")  # Keras 2 first layer of a Sequential
        if isinstance(shape, (list, tuple)):
            # Its `dtype` is the layer's own (an Embedding's float32), not its input's.
            return tuple(shape), None
        return None, None

    def integer_sequence_length(self, embedding: Layer) -> int | bool | None:
        """For an embedding fed a batch of integer sequences, their static length (None when
        variable); False when its input is not a sequence of several integer ids."""
        shape, _ = self.input_spec(embedding)
        length = embedding.config.get("input_length")  # Keras 2
        if shape is not None:
            # A float input of ids is still ids (Keras 2 Sequentials and many tutorials declare
            # `Input(shape=(200,))`; the Embedding casts): the shape decides.
            if len(shape) != 2:
                return False
            length = shape[1]
        if length == 1:
            return False
        return length if isinstance(length, int) else None

    def weight_bytes(self) -> int:
        return sum(weight.nbytes for weight in self.weights())

    def compute_weight_stats(self, progress: Callable[[int], None] | None = None) -> None:
        """Read every weight once, in row blocks, and cache its statistics."""
        for weight in self.weights():
            weight.stats(progress=progress)

    def on_close(self, closer: Callable[[], None]) -> None:
        self._closers.append(closer)

    def close(self) -> None:
        while self._closers:
            self._closers.pop()()

    def __enter__(self) -> ModelView:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _all_weights(view: ModelView) -> tuple[Weight, ...]:
    return tuple(weight for layer in view.layers for weight in layer.weights)


def _embeddings(view: ModelView) -> tuple[Layer, ...]:
    return tuple(layer for layer in view.layers if layer.is_embedding)


def _reachable_from(view: ModelView, name: str) -> tuple[Layer, ...]:
    reached = []
    seen = {name}
    queue = deque([name])
    while queue:
        for edge in view.consumers(queue.popleft()):
            if edge.target not in seen:
                seen.add(edge.target)
                queue.append(edge.target)
                layer = view.layer(edge.target)
                if layer is not None:
                    reached.append(layer)
    return tuple(reached)


def _group_edges(edges: list[Edge], key: Callable[[Edge], str]) -> dict[str, list[Edge]]:
    grouped: dict[str, list[Edge]] = {}
    for edge in edges:
        grouped.setdefault(key(edge), []).append(edge)
    return grouped
