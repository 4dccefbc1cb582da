"""Comparing two stored matrices block by block, so memory stays bounded at any size."""

from __future__ import annotations

import numpy as np

from nandoctor.view import Weight


def max_abs_difference(matrix: Weight, other: Weight, transposed: bool = False) -> float:
    """max |matrix - other| (or `other.T` when `transposed`); inf if shapes disagree or a
    value is NaN in one and not the other.

    `matrix` is streamed in row blocks; the matching part of `other` is read as rows, or as
    a block of columns when it is stored transposed (an output projection `(d, V)` against
    an embedding `(V, d)`).
    """
    expected = tuple(reversed(other.shape)) if transposed else tuple(other.shape)
    if len(matrix.shape) != 2 or tuple(matrix.shape) != expected:
        return float("inf")
    largest = 0.0
    for start, block in matrix.blocks():
        stop = start + len(block)
        if transposed:
            counterpart = other.source.column_block(start, stop).T
        else:
            counterpart = other.source.read_rows(start, stop)
        left, right = _as_float(block, matrix), counterpart.astype(np.float64)
        both_nan = np.isnan(left) & np.isnan(right)
        with np.errstate(invalid="ignore"):
            difference = np.where(both_nan, 0.0, np.abs(left - right))
        if np.isnan(difference).any():
            return float("inf")
        largest = max(largest, float(difference.max()) if difference.size else 0.0)
    return largest


def _as_float(block: np.ndarray, weight: Weight) -> np.ndarray:
    from nandoctor.weight_reading import widen_bfloat16

    return (widen_bfloat16(block) if weight.dtype == "bfloat16" else block).astype(np.float64)
