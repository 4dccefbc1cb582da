from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from nandoctor.analysis.position_tables import (
    looks_sinusoidal,
    may_look_sinusoidal,
    readable,
    sinusoid_defects,
)
from nandoctor.diagnosis import Rule
from nandoctor.report import Finding, Severity
from nandoctor.view import ModelView


class MalformedPositionalTable(Rule):
    """## What it does
    Checks every stored sinusoidal position table against the closed form of Vaswani et
    al., `sin/cos(pos / 10000^(2i/d))`, in any order of its columns.

    ## Why is this bad?
    A hand-built table that uses the column index `j` where the formula has `2i`, pairs the
    sine of one frequency with the cosine of another, or gets the exponent's sign wrong,
    still looks like waves and trains without error, but its positions are no longer
    distinguishable by a fixed linear map, which is what the encoding is for. A table whose
    columns are a fixed permutation of the correct ones (all sines, then all cosines) is
    equally good and is not reported.

    ## Example
    ```python
    import numpy as np
    import keras

    length, width = 32, 16
    pos, j = np.arange(length)[:, None], np.arange(width)[None, :]
    table = np.where(j % 2 == 0, np.sin(pos / 10000 ** (j / width)), np.cos(pos / 10000 ** (j / width)))
    tokens = keras.Input((length,), dtype="int32")
    positions = keras.Input((length,), dtype="int32")
    x = keras.layers.Embedding(100, width, embeddings_initializer=keras.initializers.RandomNormal(stddev=1.0))(tokens)
    p = keras.layers.Embedding(length, width, weights=[table], trainable=False, name="positions")(positions)
    model = keras.Model([tokens, positions], keras.layers.Dense(4)(keras.layers.Add()([x, p])))
    ```

    ## Use instead
    ```python
    import keras
    import nandoctor.layers

    tokens = keras.Input((32,), dtype="int32")
    x = keras.layers.Embedding(100, 16, embeddings_initializer=keras.initializers.RandomNormal(stddev=1.0))(tokens)
    x = nandoctor.layers.SinusoidalPositionEncoding(name="positions")(x)
    model = keras.Model(tokens, keras.layers.Dense(4)(x))
    ```

    ## Options
    - `max_wavelength` (default `10000`): the `w` of `w^(2i/d)`.

    ## Known problems
    A table is recognised as sinusoidal by its first row (`sin 0 = 0`, `cos 0 = 1`, half
    each); one built from sines alone is not recognised.

    ## References
    - Vaswani et al., 2017, "Attention Is All You Need", section 3.5.
    """

    code = "ND503"
    evidence = "the weights of a table added to token embeddings. A table inside unseen code is not found."
    name = "malformed-positional-table"
    severity = Severity.WARNING
    fix = (
        "Use nandoctor.layers.SinusoidalPositionEncoding, which computes the closed form, or build "
        "the table as sin/cos(pos / 10000**(2*i/d)) with 2i the even column of each sine-cosine pair."
    )
    options: ClassVar[dict[str, Any]] = {"max_wavelength": 10000.0}
    reads_weights = True

    def check(self, view: ModelView) -> Iterator[Finding]:
        for weight in view.weights():
            if not readable(weight) or weight.rows < 3:
                continue
            # Where the scan already streamed the weights, row 0's largest |value| rules most
            # tables out (a kernel's first row is no run of 0s and 1s) without reading it again.
            stats = weight.computed_stats
            row_max_abs = stats.row_max_abs if stats is not None else None
            if row_max_abs is not None and not may_look_sinusoidal(float(row_max_abs[0]), weight.shape[1]):
                continue
            if not looks_sinusoidal(weight.source.rows_at([0])[0].astype(float)):
                continue
            defects = sinusoid_defects(weight.read(), float(self.settings["max_wavelength"]))
            if defects:
                yield self.finding(
                    weight.layer,
                    f"sinusoidal table {weight.name} {tuple(weight.shape)} of '{weight.layer}' is not the closed form: "
                    + "; ".join(defects),
                    details={"weight": weight.name, "shape": list(weight.shape), "defects": defects},
                )
