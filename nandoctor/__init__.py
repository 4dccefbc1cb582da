"""nandoctor: finds the faults that make Keras models fail without an error message.

The static path (`scan`, the CLI) imports numpy, h5py and the standard library only;
anything that needs TensorFlow or Keras is imported lazily, when it is used. The reference
layers are `nandoctor.layers` (importing that imports Keras).
"""

from __future__ import annotations

__version__ = "0.1.0"

from nandoctor.report import Confidence, Finding, Report, Severity


def scan(paths, *, select=None, ignore=None, options=None) -> Report:
    """Scan saved models and embedding matrices statically; see `nandoctor scan --help`."""
    from nandoctor.engine import scan as run_scan

    return run_scan(paths, select=select, ignore=ignore, options=options)


def check(model, *, probes=True, select=None, ignore=None, options=None, sample=None) -> Report:
    """Examine a live Keras model: the same rules as `scan`, on its config and weights, then
    (with `probes`) the live checks: the graph checks of hand-written numerics (ND201
    unguarded division, ND202 singular gradient, ND203 unguarded log), the padding probe
    (confirms ND301/ND302), the tie probe (ND402) and the causal probe (ND502). A probe that
    confirms a static finding raises it to high confidence with its evidence; the NaN probe
    (inputs built to break the model: zero-row ids, all padding, zeros, 1e30, identical
    pairs) confirms the graph checks' ND201/ND202 and names the culprit layer. `sample`, a
    batch `(x, y)` of the data the model trains on, lets the targets be measured against the
    output's range (ND601: distances through a sigmoid).
    """
    from nandoctor.engine import check_model

    return check_model(model, probes=probes, select=select, ignore=ignore, options=options, sample=sample)


def assert_healthy(model_or_path, *, fail_on="warning", select=None, ignore=None) -> None:
    """Raise `AssertionError` with the rendered report when a finding reaches `fail_on`, or
    a file cannot be read. Takes a path (scanned statically) or a live model (`check`).

    The failure is the report: pytest shows the caller's line and the report, not
    nandoctor's own frames (`__tracebackhide__`), and nothing is chained to it."""
    __tracebackhide__ = True
    import os

    from nandoctor.reporters.text import render_text

    if isinstance(model_or_path, (str, os.PathLike)):
        report = scan(model_or_path, select=select, ignore=ignore)
    else:
        report = check(model_or_path, select=select, ignore=ignore)
    if report.exit_code(fail_on) != 0:
        raise AssertionError("nandoctor found problems:\n" + render_text(report)) from None


def __getattr__(name: str):
    # Monitor imports Keras: only when it is asked for, so `import nandoctor` stays TF-free.
    if name in ("Monitor", "NonfiniteTrainingError"):
        from nandoctor.monitor import callback

        return getattr(callback, name)
    raise AttributeError(f"module 'nandoctor' has no attribute {name!r}")


from nandoctor import keras_registration  # noqa: E402

keras_registration.install()

__all__ = [
    "Confidence",
    "Finding",
    "Monitor",
    "NonfiniteTrainingError",
    "Report",
    "Severity",
    "__version__",
    "assert_healthy",
    "check",
    "scan",
]
