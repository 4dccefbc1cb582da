"""The training callback: statistics on the device, detectors, actions, log.

The detectors are TF-free (their documentation is read by `nandoctor rule ND701`); the
callback imports Keras, so it is imported only when asked for.
"""

from nandoctor.monitor.exploding_updates import ExplodingUpdates
from nandoctor.monitor.nonfinite_during_training import NonfiniteDuringTraining
from nandoctor.monitor.shrinking_weights import ShrinkingWeights

# The one registry of training detectors, as nandoctor.rules.RULES is of rules.
DETECTORS = [ShrinkingWeights, NonfiniteDuringTraining, ExplodingUpdates]

__all__ = ["DETECTORS", "Monitor", "NonfiniteTrainingError"]


def __getattr__(name: str):
    if name in ("Monitor", "NonfiniteTrainingError"):
        from nandoctor.monitor import callback

        return getattr(callback, name)
    raise AttributeError(f"module 'nandoctor.monitor' has no attribute {name!r}")
