"""ND101: rows of unknown words given small random vectors instead of zeros."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nandoctor.fix.prescription import CannotFix, Prescription, Safety, embedding_of
from nandoctor.report import AppliedFix, Finding
from nandoctor.rules.zero_embedding_rows import padding_row

# New rows are this fraction of the table's median row norm: small enough to stay near
# the origin where unknown words belong, far from the zero vector whose norm has no gradient.
_SCALE = 0.1
_NORM_SAMPLE = 4096


class FillZeroRows(Prescription):
    codes = ("ND101",)
    safety = Safety.SAFE
    summary = (
        "safe: every all-zero row but the padding row gets a small random vector (seeded; its norm a tenth "
        "of the table's median row norm), in the file's own format; each row is listed."
    )

    def apply(self, editor, view, finding: Finding) -> AppliedFix:
        layer, matrix = embedding_of(view, finding.layer)
        if not np.issubdtype(np.dtype("float32" if matrix.source.bfloat16 else matrix.source.dtype), np.floating):
            raise CannotFix(f"the table of {finding.layer!r} does not hold floats ({matrix.dtype})")
        zero_rows = matrix.stats().zero_rows
        assert zero_rows is not None  # embedding_of returned a 2-D matrix, whose stats keep its rows
        padding = padding_row(layer)
        rows = zero_rows[zero_rows != padding] if padding is not None else zero_rows
        norm = _median_nonzero_norm(matrix)
        if norm == 0.0:
            raise CannotFix(f"every row of {finding.layer!r} is zero: there is no scale to draw new rows at")
        rng = np.random.default_rng(self.seed)
        directions = rng.standard_normal((len(rows), matrix.source.row_len))
        values = (directions / np.linalg.norm(directions, axis=1, keepdims=True) * norm * _SCALE).astype(np.float32)
        editor.set_rows(matrix, rows, values)
        labels: Sequence[str | None] = matrix.row_labels([int(row) for row in rows]) or [None] * len(rows)
        changes = [
            f"{finding.layer}: row {row}{f' ({label!r})' if label else ''}: zero -> random, norm {norm * _SCALE:.3g}"
            for row, label in zip(rows.tolist(), labels)
        ]
        return self.applied(
            finding,
            f"gave {len(rows):,} zero rows of '{finding.layer}' random vectors of norm {norm * _SCALE:.3g} "
            f"(a tenth of the median row norm, seed {self.seed})",
            changes,
            rows=rows.tolist(),
            norm=norm * _SCALE,
            seed=self.seed,
        )


def _median_nonzero_norm(matrix) -> float:
    rows = np.unique(np.linspace(0, matrix.rows - 1, num=min(_NORM_SAMPLE, matrix.rows)).astype(np.int64))
    norms = matrix.row_norms(rows.tolist())
    norms = norms[np.isfinite(norms) & (norms > 0)]
    return float(np.median(norms)) if len(norms) else 0.0
