"""ND504: a learned position table brought to the scale of the token embeddings it is added to."""

from __future__ import annotations

import numpy as np

from nandoctor.analysis.position_tables import position_tables
from nandoctor.fix.prescription import CannotFix, Prescription, Safety
from nandoctor.report import AppliedFix, Finding


class RescalePositions(Prescription):
    codes = ("ND504",)
    safety = Safety.UNSAFE
    summary = (
        "unsafe: the position table is multiplied by the ratio of the token embeddings' median row norm to "
        "its own, so neither drowns the other; what the model learned from the positions changes scale, "
        "so it needs training."
    )

    def apply(self, editor, view, finding: Finding) -> AppliedFix:
        table = next((table for table in position_tables(view) if table.layer.name == finding.layer), None)
        token_scale, position_scale = finding.details.get("token_scale"), finding.details.get("position_scale")
        if table is None or not token_scale or not position_scale:
            raise CannotFix(f"no position table and token scale for {finding.layer!r}")
        factor = token_scale / position_scale
        values = table.weight.read().reshape(table.weight.rows, -1).astype(np.float32) * factor
        editor.set_rows(table.weight, np.arange(table.weight.rows), values)
        return self.applied(
            finding,
            f"'{finding.layer}': position table x {factor:.3g}, median row norm "
            f"{position_scale:.3g} -> {token_scale:.3g}",
            [f"{finding.layer}: {table.weight.name} x {factor:.3g}"],
            factor=factor,
        )
