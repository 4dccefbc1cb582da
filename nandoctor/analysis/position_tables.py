"""Position tables: finding them in a model, and checking a sinusoidal one against the
closed form of Vaswani et al. (2017), up to any order of its columns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nandoctor.analysis.keras_facts import (
    MASK_CARRIERS,
    POSITION_LAYERS,
    is_known_class,
)
from nandoctor.view import Layer, ModelView, Weight

# A table is read whole only below this many values (a position table is small).
MAX_TABLE_VALUES = 16 << 20


@dataclass(frozen=True)
class PositionTable:
    """A stored `(rows, hidden)` table added to token vectors at each position."""

    layer: Layer
    weight: Weight
    tokens: Layer | None  # the token embedding it is added to
    length: int | None  # the static number of positions it must cover
    # The token table, where it is not `tokens`'s own: a custom layer holding both tables.
    token_weight: Weight | None = None
    # The length is the one the model's preprocessing feeds, not its input's static shape.
    length_fed: bool = False

    def token_table(self) -> tuple[str, Weight] | None:
        """(a name for the token table, its matrix), if the model has one beside this table."""
        if self.token_weight is not None:
            return f"{self.layer.name}/{self.token_weight.name}", self.token_weight
        if self.tokens is None:
            return None
        matrix = self.tokens.embedding_matrix()
        return (self.tokens.name, matrix) if matrix is not None else None


def position_tables(view: ModelView) -> tuple[PositionTable, ...]:
    """Every position table of the model, with the token table each is added to (found once
    per view: ND504, ND505 and the ND504 fix ask)."""
    return view.shared(_find_position_tables)


def _find_position_tables(view: ModelView) -> tuple[PositionTable, ...]:
    tables = []
    for layer in view.layers:
        weight = _added_table(view, layer)
        if weight is not None:
            tokens = _token_embedding_upstream(view, layer) or _sibling_token_embedding(view, layer)
            length = view.integer_sequence_length(tokens) if tokens else None
            fed = length is None and view.fed_sequence_length is not None
            if fed:
                length = view.fed_sequence_length
            tables.append(
                PositionTable(layer, weight, tokens, length if isinstance(length, int) else None, length_fed=fed)
            )
    return (*tables, *_position_embeddings_merged_by_add(view), *_tables_inside_custom_layers(view))


def _added_table(view: ModelView, layer: Layer) -> Weight | None:
    """The table a layer adds to the sequence it receives: a known position layer's, or a
    custom layer's one weight shaped like its input's (length, hidden), or as wide as its
    input with as many rows as its config's length argument says (`maxlen=16` on a table of
    16 rows, fed 32 positions: the lookup past row 15 fails only at run time)."""
    if layer.class_name in POSITION_LAYERS:
        return next((w for w in layer.weights if len(w.shape) == 2), None)
    if is_known_class(layer.class_name, layer.module):
        return None
    matrices = [w for w in layer.weights if len(w.shape) == 2]
    if len(matrices) != 1:
        return None
    shape = layer.input_shape
    tokens = _token_embedding_upstream(view, layer)
    if shape is not None and len(shape) == 3:
        rows, width = matrices[0].shape
        if width != shape[2]:
            return None
        return matrices[0] if rows == shape[1] or rows in _length_arguments(layer) else None
    token_width = tokens.config.get("output_dim") if tokens else None
    return matrices[0] if tokens is not None and matrices[0].shape[1] == token_width else None


def _token_embedding_upstream(view: ModelView, layer: Layer) -> Layer | None:
    """The nearest embedding of integer sequences feeding `layer` through per-position layers."""
    frontier = [edge.source for edge in view.producers(layer.name)]
    seen = set(frontier)
    while frontier:
        name = frontier.pop(0)
        candidate = view.layer(name)
        if candidate is None:
            continue
        if candidate.is_embedding and view.integer_sequence_length(candidate) is not False:
            return candidate
        if candidate.class_name in MASK_CARRIERS or candidate.class_name in POSITION_LAYERS:
            for edge in view.producers(name):
                if edge.source not in seen:
                    seen.add(edge.source)
                    frontier.append(edge.source)
    return None


def _sibling_token_embedding(view: ModelView, layer: Layer) -> Layer | None:
    """Inside a KerasHub backbone, whose graph is its code, the position table's token table
    is its sibling by KerasHub's naming: `<backbone>/token_embedding` beside
    `<backbone>/position_embedding`."""
    if layer.parent is None:
        return None
    sibling = view.layer(f"{layer.parent}/token_embedding")
    return sibling if sibling is not None and sibling.is_embedding else None


def _position_embeddings_merged_by_add(view: ModelView) -> list[PositionTable]:
    """`Add([token_embedding(ids), position_embedding(positions)])`."""
    tables = []
    for add in view.layers:
        if add.class_name != "Add":
            continue
        embeddings = []
        for edge in view.producers(add.name):
            source = view.layer(edge.source)
            if source is not None and source.class_name == "Embedding" and source.embedding_matrix() is not None:
                embeddings.append(source)
        if len(embeddings) != 2:
            continue
        positions, tokens = sorted(embeddings, key=_position_likeness, reverse=True)
        length = view.integer_sequence_length(positions)
        matrix = positions.embedding_matrix()
        assert matrix is not None  # each of the two was chosen above for having one
        tables.append(PositionTable(positions, matrix, tokens, length if isinstance(length, int) else None))
    return tables


# Arguments by which custom embedding layers name the number of positions they cover.
_LENGTH_ARGUMENTS = (
    "maxlen",
    "max_len",
    "max_length",
    "sequence_length",
    "max_sequence_length",
    "num_positions",
    "max_positions",
    "max_position_embeddings",
)


def _tables_inside_custom_layers(view: ModelView) -> list[PositionTable]:
    """keras-io's `TokenAndPositionEmbedding` (the most common form in the wild): a custom
    layer holding a token table and a position table of the same width, the position table's
    rows matching its length argument."""
    tables = []
    for layer in view.layers:
        if is_known_class(layer.class_name, layer.module):
            continue
        # By shape, not name: a `.keras` file names the weights of `add_weight` by their index.
        embeddings = [w for w in layer.weights if len(w.shape) == 2]
        if len(embeddings) != 2 or embeddings[0].shape[1] != embeddings[1].shape[1]:
            continue
        lengths = _length_arguments(layer)
        positions = [w for w in embeddings if w.shape[0] in lengths]
        if len(positions) != 1:
            continue
        (table,) = positions
        tokens = next(w for w in embeddings if w is not table)
        # Its input's length, where the file records it (a legacy .h5 gives no shape of a custom
        # layer's input, but the model input feeding it has one).
        length = view.integer_sequence_length(layer)
        tables.append(
            PositionTable(layer, table, None, length if isinstance(length, int) else None, token_weight=tokens)
        )
    return tables


def _length_arguments(layer: Layer) -> set[int]:
    return {value for key in _LENGTH_ARGUMENTS if isinstance(value := layer.config.get(key), int)}


def _position_likeness(layer: Layer) -> tuple[bool, int]:
    """Named for positions first, then the smaller table (a vocabulary outnumbers positions)."""
    return ("pos" in layer.name.lower(), -int(layer.config.get("input_dim") or 0))


def looks_sinusoidal(row0: np.ndarray) -> bool:
    """Row 0 of a sinusoidal table: sin(0) = 0 and cos(0) = 1, one of each per frequency."""
    zeros, ones = _near(row0, 0.0), _near(row0, 1.0)
    hidden = len(row0)
    return (
        hidden >= 4
        and bool(np.all(zeros | ones))
        and hidden // 2 <= ones.sum() <= (hidden + 1) // 2
        and bool(ones.any())
    )


def _near(values: np.ndarray, target: float) -> np.ndarray:
    """`np.isclose(values, target, atol=1e-6)` for a finite `target`, to the bit: |v - t| within
    1e-6 plus 1e-5 of |t| (NaN and inf are never near). 1 us on a row of 16 where np.isclose,
    checking around the same comparison, takes 8 us."""
    return np.abs(values - target) <= 1e-6 + 1e-5 * abs(target)


def may_look_sinusoidal(row0_max_abs: float, hidden: int) -> bool:
    """Whether a row whose largest |value| is `row0_max_abs` can pass `looks_sinusoidal`,
    from statistics already computed: every value there lies within 1e-6 of 0 or within
    1.1e-5 of 1 (`np.isclose`'s relative tolerance) and one is a 1, so the largest is about
    1. The margin here is wider: this only spares reading the row of a table that is not."""
    return hidden >= 4 and abs(row0_max_abs - 1.0) <= 1e-4


def sinusoid_defects(table: np.ndarray, max_wavelength: float = 10000.0) -> list[str]:
    """What is wrong with a sinusoidal table, in words; empty when it is the closed form
    `sin/cos(pos / w**(2i/d))` with its columns in any order."""
    table = np.asarray(table, dtype=np.float64)
    rows, hidden = table.shape
    cosines = _near(table[0], 1.0)
    kinds = np.where(cosines, "cos", "sin")
    frequencies = _frequencies(table, cosines)
    positions = np.arange(rows)[:, None]
    rebuilt = np.where(kinds == "sin", np.sin(positions * frequencies), np.cos(positions * frequencies))
    tolerance = 2e-3 * (1 + rows / 1000)
    not_sinusoids = np.flatnonzero(np.abs(rebuilt - table).max(axis=0) > tolerance)
    defects = []
    if len(not_sinusoids):
        defects.append(
            f"{len(not_sinusoids)} of {hidden} columns are not sinusoids of one frequency (first: column {not_sinusoids[0]})"
        )
    expected = max_wavelength ** (-2.0 * np.arange((hidden + 1) // 2) / hidden)
    # Below this frequency, a column cannot tell its frequency apart over `rows` positions.
    resolution = 1e-3 / max(rows - 1, 1)
    # The expected frequency nearest each column's, on a log scale, for all columns at once.
    nearest_of = np.argmin(np.abs(np.log(np.maximum(frequencies, 1e-30))[:, None] - np.log(expected)), axis=1)
    skipped = set(not_sinusoids.tolist())
    counts: dict[tuple[str, int], int] = {}
    wrong = []
    for column in range(hidden):
        if column in skipped:
            continue
        frequency = frequencies[column]
        if frequency < resolution and expected.min() < resolution * 10:
            continue
        nearest = int(nearest_of[column])
        if abs(frequency - expected[nearest]) > 1e-2 * expected[nearest] + resolution:
            wrong.append(column)
            continue
        counts[(kinds[column], nearest)] = counts.get((kinds[column], nearest), 0) + 1
    if wrong:
        defects.append(
            f"{len(wrong)} columns have frequencies that are not {max_wavelength:g}^(-2i/d) "
            f"(column {wrong[0]}: {frequencies[wrong[0]]:.4g})"
        )
    unpaired = sorted(
        {i for (_, i), count in counts.items() if count != 1}
        | {
            i
            for kind, i in counts
            if (("cos" if kind == "sin" else "sin"), i) not in counts
            and not (kind == "sin" and hidden % 2 and i == len(expected) - 1)
        }
    )
    if unpaired and not wrong:
        defects.append(
            f"sines and cosines are not paired by frequency: {len(unpaired)} frequencies lack one "
            f"sine and one cosine (first: i = {unpaired[0]})"
        )
    return defects


def _frequencies(table: np.ndarray, cosines: np.ndarray) -> np.ndarray:
    """The angular frequency of each sin or cos column (`cosines` says which are cosines), read
    at row 1 and refined on rows 2, 4, 8, ... while `row * frequency < 1`: a cosine of a small
    frequency rounds to 1.0 at row 1, and reveals its frequency only further on. All columns
    at once, a row at a time (one column at a time was most of ND503's cost)."""

    def angles(row: int) -> np.ndarray:
        values = np.clip(table[row], -1.0, 1.0)
        return np.where(cosines, np.arccos(values), np.arcsin(values))

    estimates = angles(1)
    row = 2
    refining = row * estimates < 1.0
    while row < len(table) and refining.any():
        estimates = np.where(refining, angles(row) / row, estimates)
        row *= 2
        refining &= row * estimates < 1.0
    return estimates


def readable(weight: Weight) -> bool:
    return len(weight.shape) == 2 and weight.size <= MAX_TABLE_VALUES and weight.dtype.startswith(("float", "bfloat"))
