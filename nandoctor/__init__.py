"""nandoctor: finds the faults that make Keras models fail without an error message.

The static path (`scan`, the CLI) imports numpy, h5py and the standard library only;
anything that needs TensorFlow or Keras is imported lazily, when it is used. The reference
layers are `nandoctor.layers` (importing that imports Keras).
"""

from __future__ import annotations

__version__ = "0.1.0"

from nandoctor.report import Confidence, Finding, Report, Severity  # noqa: E402


def scan(paths, *, select=None, ignore=None, options=None) -> Report:
    """Scan saved models and embedding matrices statically; see `nandoctor scan --help`."""
    from nandoctor.engine import scan as run_scan

    return run_scan(paths, select=select, ignore=ignore, options=options)


from nandoctor import keras_registration  # noqa: E402

keras_registration.install()

__all__ = ["Confidence", "Finding", "Report", "Severity", "__version__", "scan"]
