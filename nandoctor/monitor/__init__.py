"""The training callback (imports Keras): statistics on the device, detectors, actions, log."""

from nandoctor.monitor.callback import Monitor, NonfiniteTrainingError

__all__ = ["Monitor", "NonfiniteTrainingError"]
