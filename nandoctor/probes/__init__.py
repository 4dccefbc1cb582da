"""Live-model checks: run the model on inputs built to break it (they import Keras).

Each probe states its evidence: the inputs it used and what it measured. Probes never
change the model's weights or optimizer state: they run forward passes, or train a
reloaded copy.
"""

from nandoctor.probes.causal import CausalLeak
from nandoctor.probes.graph import GraphChecks
from nandoctor.probes.nan_probe import NanProbe
from nandoctor.probes.padding import PaddingProbe
from nandoctor.probes.tying import TieProbe

# Probes run the model; the graph checks trace it and need the view to know its layers.
PROBES = [PaddingProbe, TieProbe, CausalLeak]
VIEW_PROBES = [GraphChecks, NanProbe]

__all__ = ["PROBES", "VIEW_PROBES", "CausalLeak", "GraphChecks", "NanProbe", "PaddingProbe", "TieProbe"]
