"""Failures of a probe that are themselves a diagnosis: the model could not run on inputs of
its own declared shape, and the error says why."""

from __future__ import annotations

import re

from nandoctor.report import Confidence, Evidence, Finding
from nandoctor.rules.positional_table_too_short import PositionalTableTooShort

# TensorFlow's message for a lookup past the end of a table: "indices[0,16] = 16 is not in [0, 16)".
_OUT_OF_RANGE = re.compile(r"indices\[[^\]]*\] = (\d+) is not in \[0, (\d+)\)")


def finding_proven_by(error: BaseException, model) -> Finding | None:
    """A lookup of row `n` in a table of `rows < n + 1` rows, on typical inputs of the model's
    own shape with ids drawn inside every token table: a position table shorter than the
    sequences the model declares it takes (ND505). Only the typical inputs prove it: a probe's
    own recipe may stray outside a table."""
    from nandoctor.live.model_inputs import CannotProbe

    if not isinstance(error, CannotProbe) or error.error is None:
        return None
    error = error.error
    match = _OUT_OF_RANGE.search(str(error))
    if match is None:
        return None
    index, rows = int(match.group(1)), int(match.group(2))
    return PositionalTableTooShort.finding(
        None,
        f"the model fails on inputs of its own declared shape: a lookup of row {index} in a table of {rows} "
        f"rows ({type(error).__name__}). Token ids were drawn inside every token table, so the table is "
        "indexed by position: it is shorter than the sequences the model takes",
        confidence=Confidence.HIGH,
        evidence=Evidence.MEASURED,
        measured=f"a lookup of row {index} in a table of {rows} rows failed on inputs of the model's declared shape",
        details={"index": index, "rows": rows, "error": type(error).__name__},
    )
