"""Comparing two stored matrices block by block, so memory stays bounded at any size."""

from __future__ import annotations

import numpy as np

from nandoctor.view import Weight, array_sources
from nandoctor.view.array_sources import widen_bfloat16


def _comparable(matrix: Weight, other: Weight, transposed: bool) -> bool:
    expected = tuple(reversed(other.shape)) if transposed else tuple(other.shape)
    return len(matrix.shape) == 2 and tuple(matrix.shape) == expected


def _block_pairs(matrix: Weight, other: Weight, transposed: bool):
    """(a row block of `matrix`, the matching part of `other`) for every block: `matrix` is
    streamed; `other` is read as rows, or as a block of columns when it is stored transposed
    (an output projection `(d, V)` against an embedding `(V, d)`), or whole, once, when it is
    stored transposed and no larger than a block (a column block is a read per row)."""
    whole = other.source.read_rows(0, other.rows) if transposed and other.nbytes <= array_sources.BLOCK_BYTES else None
    for start, block in matrix.blocks():
        stop = start + len(block)
        if not transposed:
            counterpart = other.source.read_rows(start, stop)
        elif whole is not None:
            counterpart = whole[:, start:stop].T
        else:
            counterpart = other.source.column_block(start, stop).T
        yield (widen_bfloat16(block) if matrix.dtype == "bfloat16" else block), counterpart


def max_abs_difference(matrix: Weight, other: Weight, transposed: bool = False) -> float:
    """max |matrix - other| (or `other.T` when `transposed`); inf if shapes disagree or a
    value is NaN in one and not the other. Read block by block (`_block_pairs`)."""
    if not _comparable(matrix, other, transposed):
        return float("inf")
    largest = 0.0
    for left, counterpart in _block_pairs(matrix, other, transposed):
        # In the stored precision and in place: one block-sized temporary, not a dozen.
        with np.errstate(invalid="ignore", over="ignore"):
            difference = np.subtract(left, counterpart, dtype=np.result_type(left, counterpart, np.float32))
            np.abs(difference, out=difference)
        undefined = np.isnan(difference)
        if undefined.any() and not np.array_equal(np.isnan(left)[undefined], np.isnan(counterpart)[undefined]):
            return float("inf")
        difference[undefined] = 0.0  # NaN in both: the same value
        largest = max(largest, float(difference.max()) if difference.size else 0.0)
    return largest


def correlation(matrix: Weight, other: Weight, transposed: bool = False) -> float:
    """Pearson correlation of the two matrices' values (`other.T` when `transposed`), streamed
    in blocks as `max_abs_difference` is; NaN when shapes disagree or a matrix is constant."""
    if not _comparable(matrix, other, transposed):
        return float("nan")
    sums = np.zeros(5)  # x, y, x^2, y^2, xy
    count = 0
    for left, counterpart in _block_pairs(matrix, other, transposed):
        x = np.asarray(left, dtype=np.float64).ravel()
        y = np.asarray(counterpart, dtype=np.float64).ravel()
        finite = np.isfinite(x) & np.isfinite(y)
        x, y = x[finite], y[finite]
        sums += (x.sum(), y.sum(), (x * x).sum(), (y * y).sum(), (x * y).sum())
        count += len(x)
    if count < 2:
        return float("nan")
    sx, sy, sxx, syy, sxy = sums
    covariance = sxy - sx * sy / count
    spread = np.sqrt(max(sxx - sx * sx / count, 0.0) * max(syy - sy * sy / count, 0.0))
    return float(covariance / spread) if spread > 0 else float("nan")
