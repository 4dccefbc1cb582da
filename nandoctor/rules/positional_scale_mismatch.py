from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from nandoctor.analysis.keras_facts import is_known_class
from nandoctor.analysis.position_tables import position_tables
from nandoctor.diagnosis import Rule
from nandoctor.report import Evidence, Finding, Severity
from nandoctor.view import ModelView


class PositionalScaleMismatch(Rule):
    """## What it does
    Compares each position table with the token embeddings it is added to, by median row
    norm, and reports a difference beyond a factor (10 by default).

    ## Why is this bad?
    Token and position vectors are summed: if positions are ten times larger, every
    position of every sentence looks alike whatever its word, and the model sees mostly
    where a token is; ten times smaller, and positions vanish. Keras's `Embedding` starts
    at a scale of about 0.03 per value, while a sinusoidal table or a table drawn from a
    unit normal is 20 to 40 times larger. Field report A's memory network added learned
    temporal tables beside its word embeddings and fell from 96% to 10% accuracy.

    ## Example
    ```python
    import keras

    tokens = keras.Input((32,), dtype="int32")
    positions = keras.Input((32,), dtype="int32")
    x = keras.layers.Embedding(100, 16, name="tokens")(tokens)
    p = keras.layers.Embedding(32, 16, embeddings_initializer=keras.initializers.RandomNormal(stddev=1.0),
                               name="positions")(positions)
    model = keras.Model([tokens, positions], keras.layers.Dense(4)(keras.layers.Add()([x, p])))
    ```

    ## Use instead
    ```python
    import keras
    import nandoctor.layers

    tokens = keras.Input((32,), dtype="int32")
    x = keras.layers.Embedding(100, 16, name="tokens")(tokens)
    x = nandoctor.layers.PositionEmbedding(32, name="positions")(x)  # starts at Embedding's scale
    model = keras.Model(tokens, keras.layers.Dense(4)(x))
    ```

    ## Options
    - `factor` (default `10`): the largest ratio, either way, between the median row norms.

    ## Known problems
    The position table is paired with the token table it is added to through the graph; a
    custom layer holding both (keras-io's `TokenAndPositionEmbedding`) pairs them itself, and
    inside a KerasHub backbone, whose graph is code, `position_embedding` is paired with its
    sibling `token_embedding` by KerasHub's naming. A table added in unseen code elsewhere is not
    judged.

    ## References
    - [Field report A](../field-reports.md) (temporal encoding of memory networks).
    - Vaswani et al., 2017, section 3.4: token embeddings are scaled by sqrt(d) for this reason.
    """

    code = "ND504"
    evidence = (
        "the weights of the position table and of the token table it is added to (also both inside one "
        "custom layer, or KerasHub siblings). Without weights it is not judged."
    )
    name = "positional-scale-mismatch"
    severity = Severity.WARNING
    evidence_kinds = (Evidence.CERTAIN, Evidence.INFERRED)
    fix = (
        "Initialise the position table at the token embeddings' scale (nandoctor.layers.PositionEmbedding "
        "does by default), or scale the token embeddings to the table's (by sqrt(d), as Vaswani et al.)."
    )
    options: ClassVar[dict[str, Any]] = {"factor": 10.0}
    reads_weights = True

    def check(self, view: ModelView) -> Iterator[Finding]:
        factor = float(self.settings["factor"])
        for table in position_tables(view):
            found = table.token_table()
            if found is None:
                continue
            tokens_name, tokens = found
            positions_scale, tokens_scale = table.weight.median_row_norm(), tokens.median_row_norm()
            if positions_scale == 0 or tokens_scale == 0:
                continue
            ratio = positions_scale / tokens_scale
            if 1 / factor <= ratio <= factor:
                continue
            effect = "the positions drown the tokens" if ratio > 1 else "the positions vanish beside the tokens"
            # A custom layer's call may scale either table (tokens by sqrt(d), as Vaswani et al.):
            # the stored scales say what it adds only where Keras's own code adds them.
            unseen = not is_known_class(table.layer.class_name, table.layer.module)
            yield self.finding(
                table.layer.name,
                f"position table '{table.layer.name}' has median row norm {positions_scale:.3g}, {ratio:.3g}x that of "
                f"the token embeddings '{tokens_name}' ({tokens_scale:.3g}) it is added to: {effect}",
                details={
                    "tokens": tokens_name,
                    "position_scale": positions_scale,
                    "token_scale": tokens_scale,
                    "ratio": ratio,
                    "factor": factor,
                },
                evidence=Evidence.INFERRED if unseen else Evidence.CERTAIN,
            )
