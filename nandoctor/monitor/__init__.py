"""The training callback: statistics on the device, detectors, actions, health log.

The detectors are TF-free (their documentation is read by `nandoctor rule ND701`, and they
are listed in `nandoctor.catalogue` with every other diagnosis); the callback imports Keras,
so it is imported only when asked for.
"""

__all__ = ["Monitor", "NonfiniteTrainingError"]


def __getattr__(name: str):
    if name in ("Monitor", "NonfiniteTrainingError"):
        from nandoctor.monitor import callback

        return getattr(callback, name)
    raise AttributeError(f"module 'nandoctor.monitor' has no attribute {name!r}")
