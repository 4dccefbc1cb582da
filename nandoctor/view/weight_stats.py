"""One streaming pass over a tensor that answers every weight rule at once.

The pass works on the bit patterns of IEEE floats: shifting a value left by one drops its
sign bit, and what remains orders exactly like |value|, with +-Inf above every finite
value and NaN above Inf. One unsigned max per row then tells at once whether the row is
all zero, holds a non-finite value, or has collapsed toward zero, and it runs about twice
as fast as a float min and max (measured: 0.07 s against 0.17 s per GiB).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from nandoctor.view.array_sources import ArraySource, widen_bfloat16

# (unsigned view, exponent bits, mantissa bits) of each float storage type.
_FLOAT_LAYOUT = {
    "float16": (np.uint16, 5, 10),
    "bfloat16": (np.uint16, 8, 7),
    "float32": (np.uint32, 8, 23),
    "float64": (np.uint64, 11, 52),
}


@dataclass
class WeightStats:
    """What the weight rules need to know about one tensor.

    `row_max_abs` holds max |value| of every row (NaN or Inf where the row holds one) for
    tensors of two or more axes, whose rows are token ids or input units; it is `None` for
    vectors and scalars, and so is `zero_rows`, the ids of all-zero rows.
    """

    size: int
    rows: int
    max_abs: float
    nan: int
    posinf: int
    neginf: int
    zero_rows: np.ndarray | None
    row_max_abs: np.ndarray | None

    @property
    def nonfinite(self) -> int:
        return self.nan + self.posinf + self.neginf

    @property
    def all_zero(self) -> bool:
        return self.max_abs == 0.0


@dataclass
class _BlockSummary:
    start: int
    row_abs: np.ndarray | None  # the block's row maxima, where they are gathered after the pass
    max_abs: float
    nan: int
    posinf: int
    neginf: int


_scratch = threading.local()


def _scratch_buffer(dtype, size: int) -> np.ndarray:
    """A per-thread buffer: a fresh 4 MiB array per block would page-fault every time."""
    buffer = getattr(_scratch, "buffer", None)
    if buffer is None or buffer.dtype != dtype or buffer.size < size:
        buffer = _scratch.buffer = np.empty(size, dtype)
    return buffer[:size]


def compute_stats(source: ArraySource, progress: Callable[[int], None] | None = None) -> WeightStats:
    logical_dtype = source.logical_dtype
    layout = _FLOAT_LAYOUT.get(logical_dtype)
    keep_rows = len(source.shape) >= 2
    # A tensor of many blocks has its rows' maxima written in place as each block is done;
    # one of a single block (nearly every tensor of a model) keeps that block's: no copy.
    many_blocks = keep_rows and source.rows > source.rows_per_block
    row_max_abs = np.zeros(source.rows, np.float64) if many_blocks else None
    row_bytes = source.row_len * source.itemsize
    progress_lock = threading.Lock()

    def summarize(start: int, block: np.ndarray) -> _BlockSummary:
        if not block.dtype.isnative:
            block = block.astype(block.dtype.newbyteorder("="))
        nan = posinf = neginf = 0
        finite = None  # the rows' maxima that are finite, where some are not
        if layout is not None:
            row_abs, nonfinite_rows = _float_row_max_abs(block, layout, logical_dtype)
            if nonfinite_rows is not None:
                values = _as_float(block[nonfinite_rows], logical_dtype)
                nan = int(np.count_nonzero(np.isnan(values)))
                posinf = int(np.count_nonzero(np.isposinf(values)))
                neginf = int(np.count_nonzero(np.isneginf(values)))
                finite = row_abs[~nonfinite_rows]
        elif block.size:
            row_abs = np.abs(block.astype(np.float64)).max(axis=1)
        else:
            row_abs = np.zeros(len(block))
        if row_max_abs is not None:
            row_max_abs[start : start + len(block)] = row_abs
        if finite is None:
            finite = row_abs
        if progress is not None:
            with progress_lock:
                progress(len(block) * row_bytes)
        kept = row_abs if keep_rows and row_max_abs is None else None
        return _BlockSummary(start, kept, float(finite.max()) if finite.size else 0.0, nan, posinf, neginf)

    # NaN and Inf bit patterns are expected here; they are counted, not warned about.
    with np.errstate(invalid="ignore", over="ignore"):
        summaries = source.map_blocks(summarize)
    if keep_rows and row_max_abs is None:
        row_max_abs = _gathered_row_maxima(summaries, source.rows)
    nan = posinf = neginf = 0
    max_abs = 0.0
    for summary in summaries:  # one loop, not four: most tensors are one block, and each loop costs
        nan += summary.nan
        posinf += summary.posinf
        neginf += summary.neginf
        max_abs = max(max_abs, summary.max_abs)
    if nan:
        max_abs = float("nan")
    elif posinf or neginf:
        max_abs = float("inf")
    return WeightStats(
        size=int(source.rows * source.row_len),
        rows=source.rows,
        max_abs=max_abs,
        nan=nan,
        posinf=posinf,
        neginf=neginf,
        zero_rows=np.flatnonzero(row_max_abs == 0) if row_max_abs is not None else None,
        row_max_abs=row_max_abs,
    )


def _gathered_row_maxima(summaries: list[_BlockSummary], rows: int) -> np.ndarray:
    only = summaries[0] if len(summaries) == 1 else None
    if only is not None and only.start == 0 and only.row_abs is not None and len(only.row_abs) == rows:
        return only.row_abs  # a fresh array of the one block's maxima
    gathered = np.zeros(rows, np.float64)
    for summary in summaries:
        assert summary.row_abs is not None
        gathered[summary.start : summary.start + len(summary.row_abs)] = summary.row_abs
    return gathered


def _float_row_max_abs(block: np.ndarray, layout, logical_dtype: str):
    """Max |value| of each row, and which rows hold a NaN or an Inf (None where none does)."""
    unsigned = layout[0]
    bits = block.view(unsigned)
    if not block.shape[1]:
        return np.zeros(len(block)), None
    shifted = _scratch_buffer(unsigned, bits.size).reshape(bits.shape)
    if bits.flags.aligned or not bits.flags.c_contiguous:
        np.left_shift(bits, 1, out=shifted)
    else:
        # A tensor at an odd offset in its file (a .keras member's data often is): a ufunc
        # on an unaligned view runs through small bounce buffers; a byte copy (memcpy) and
        # an in-place shift is faster.
        shifted.view(np.uint8)[...] = bits.view(np.uint8)
        np.left_shift(shifted, 1, out=shifted)
    keys = shifted.max(axis=1)
    inf_key = _INF_KEY[layout]
    # Which rows are not finite, asked only when one is: the largest key says (cheaper than a compare and `any`).
    nonfinite_rows = keys >= inf_key if len(keys) and keys.max() >= inf_key else None
    np.right_shift(keys, 1, out=keys)  # a fresh array: shifted back in place
    return _as_float(keys, logical_dtype).astype(np.float64), nonfinite_rows


def _inf_key(unsigned, exponent_bits: int, mantissa_bits: int):
    return unsigned(((1 << exponent_bits) - 1) << mantissa_bits) << unsigned(1)


# The shifted bit pattern of +Inf in each layout (built once): every key at or above it is Inf or NaN.
_INF_KEY = {layout: _inf_key(*layout) for layout in _FLOAT_LAYOUT.values()}


def _as_float(raw: np.ndarray, logical_dtype: str) -> np.ndarray:
    if logical_dtype == "bfloat16":
        return widen_bfloat16(raw)
    return raw.view(np.dtype(logical_dtype)) if raw.dtype.kind == "u" else raw
