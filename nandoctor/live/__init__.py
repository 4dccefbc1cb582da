"""The live checks: code that traces or runs a live model (they import Keras when they run).

`LIVE_CHECKS` is the order they run in: the settling of what the scan could not see (masks,
what a position table inside custom code adds, the targets of a sample the user gave) first, then the graph checks (they raise suspicions from
the traced graph), the loss traced the same way, then the probes, which run the model on inputs built to break it and
confirm suspicions or find what none named. Each declares the diagnoses it raises
(`LiveCheck.raises`); the diagnoses themselves are in `nandoctor.catalogue`.
"""

from nandoctor.live.causal_probe import CausalProbe
from nandoctor.live.graph_checks import GraphChecks
from nandoctor.live.loss_trace import LossTrace
from nandoctor.live.mask_carry import MaskCarry
from nandoctor.live.nan_probe import NanProbe
from nandoctor.live.padding_probe import PaddingProbe
from nandoctor.live.position_scale import PositionScale
from nandoctor.live.target_range import TargetRange
from nandoctor.live.tie_probe import TieProbe

LIVE_CHECKS = (
    MaskCarry,
    PositionScale,
    TargetRange,
    GraphChecks,
    LossTrace,
    NanProbe,
    PaddingProbe,
    TieProbe,
    CausalProbe,
)

__all__ = [
    "LIVE_CHECKS",
    "CausalProbe",
    "GraphChecks",
    "LossTrace",
    "MaskCarry",
    "NanProbe",
    "PaddingProbe",
    "PositionScale",
    "TargetRange",
    "TieProbe",
]
