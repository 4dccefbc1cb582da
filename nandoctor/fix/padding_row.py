"""ND303: the padding row set to zero, so padded positions add nothing where the mask is lost."""

from __future__ import annotations

import numpy as np

from nandoctor.fix.prescription import CannotFix, Prescription, Safety, embedding_of
from nandoctor.report import AppliedFix, Finding


class ZeroPaddingRow(Prescription):
    codes = ("ND303",)
    safety = Safety.SAFE
    summary = (
        "safe: the padding row is set to zero. Outputs change only where the input holds the padding id, "
        "which is what the row was for."
    )

    def apply(self, editor, view, finding: Finding) -> AppliedFix:
        _, matrix = embedding_of(view, finding.layer)
        padding_id = finding.details.get("padding_id")
        if not isinstance(padding_id, int):
            raise CannotFix(f"the finding on {finding.layer!r} names no padding id")
        editor.set_rows(matrix, np.array([padding_id]), np.zeros((1, matrix.source.row_len), np.float32))
        norm = finding.details.get("row_norm")
        return self.applied(
            finding,
            f"set padding row {padding_id} of '{finding.layer}' to zero (its norm was {norm:.3g})",
            [f"{finding.layer}: row {padding_id}: norm {norm:.3g} -> 0"],
            padding_id=padding_id,
        )
