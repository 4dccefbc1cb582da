"""Live-model checks: run the model on inputs built to break it (they import Keras).

Each probe states its evidence: the inputs it used and what it measured. Probes never
change the model's weights or optimizer state: they run forward passes, or train a
reloaded copy.
"""

from nandoctor.probes.causal import CausalLeak
from nandoctor.probes.graph import GraphChecks
from nandoctor.probes.nan_probe import NanProbe
from nandoctor.probes.numerics import SingularGradient, UnguardedDivision, UnguardedLog
from nandoctor.probes.padding import PaddingProbe
from nandoctor.probes.tying import TieProbe

# The graph checks raise suspicions, as the static rules do; the probes run the model and
# confirm them (or find what no suspicion named). Each takes (model, view).
SUSPICIONS = [GraphChecks]
PROBES = [NanProbe, PaddingProbe, TieProbe, CausalLeak]
# The codes only a live model can raise, each with its documentation page (ND402's probe
# confirms the static rule and shares its page).
LIVE_RULES = [UnguardedDivision, SingularGradient, UnguardedLog, CausalLeak]

__all__ = ["LIVE_RULES", "PROBES", "SUSPICIONS", "CausalLeak", "GraphChecks", "NanProbe", "PaddingProbe", "TieProbe"]
