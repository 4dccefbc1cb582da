"""`nandoctor fix`: the prescriptions of the static rules applied to the file, as `ruff --fix`
applies its fixes to code. `PRESCRIPTIONS` is the one list of fixes; a rule with none is
fixed by hand (its page says so)."""

from __future__ import annotations

from nandoctor.fix.causal_mask import CausalMask
from nandoctor.fix.masked_embedding import MaskPadding
from nandoctor.fix.output_activation import ProbabilityOutput, SigmoidForOneUnit
from nandoctor.fix.padding_row import ZeroPaddingRow
from nandoctor.fix.position_scale import RescalePositions
from nandoctor.fix.prescription import CannotFix, Prescription, Safety
from nandoctor.fix.tie import TieOnce
from nandoctor.fix.zero_rows import FillZeroRows

PRESCRIPTIONS: tuple[type[Prescription], ...] = (
    FillZeroRows,
    ZeroPaddingRow,
    TieOnce,
    SigmoidForOneUnit,
    ProbabilityOutput,
    MaskPadding,
    CausalMask,
    RescalePositions,
)


def prescriptions_for(code: str) -> list[type[Prescription]]:
    return [prescription for prescription in PRESCRIPTIONS if code in prescription.codes]


__all__ = ["PRESCRIPTIONS", "CannotFix", "Prescription", "Safety", "prescriptions_for"]
