from __future__ import annotations

from collections.abc import Iterator

from nandoctor.analysis.position_tables import position_tables
from nandoctor.diagnosis import Rule
from nandoctor.report import Evidence, Finding, Severity
from nandoctor.view import ModelView


class PositionalTableTooShort(Rule):
    """## What it does
    Finds position tables with fewer rows than the model has positions.

    ## Why is this bad?
    A model built for sequences of `T` tokens looks up positions `0 .. T-1`. A table of
    fewer rows has nothing for the last ones: on CPU the lookup fails at run time, but on
    GPU, TensorFlow's gather returns zero vectors for out-of-range ids without a word, so
    the model trains with the end of every sequence unplaced.

    ## Example
    ```python
    import keras

    tokens = keras.Input((64,), dtype="int32")
    positions = keras.Input((64,), dtype="int32")
    x = keras.layers.Embedding(100, 16, name="tokens")(tokens)
    p = keras.layers.Embedding(32, 16, name="positions")(positions)  # 32 rows for 64 positions
    model = keras.Model([tokens, positions], keras.layers.Dense(4)(keras.layers.Add()([x, p])))
    ```

    ## Use instead
    ```python
    import keras

    tokens = keras.Input((64,), dtype="int32")
    positions = keras.Input((64,), dtype="int32")
    x = keras.layers.Embedding(100, 16, name="tokens")(tokens)
    p = keras.layers.Embedding(64, 16, name="positions")(positions)
    model = keras.Model([tokens, positions], keras.layers.Dense(4)(keras.layers.Add()([x, p])))
    ```

    ## Known problems
    Only fixed sequence lengths are checked: with a variable length (`None`), the table's
    length is a limit the file does not state.
    """

    code = "ND505"
    evidence = (
        "the config's static input length (in a KerasHub preset, the length its preprocessor pads to) "
        "and the table's rows. A free length (None) is not judged."
    )
    name = "positional-table-too-short"
    severity = Severity.ERROR
    evidence_kinds = (Evidence.CERTAIN, Evidence.MEASURED)
    fix = (
        "Give the position table one row per position of the longest sequence "
        "(nandoctor.layers.PositionEmbedding(sequence_length=...) refuses longer inputs when built)."
    )

    def check(self, view: ModelView) -> Iterator[Finding]:
        for table in position_tables(view):
            rows = table.weight.rows
            if table.length is None or rows >= table.length:
                continue
            takes = (
                "the model's preprocessor pads every input to" if table.length_fed else "the model takes sequences of"
            )
            yield self.finding(
                table.layer.name,
                f"position table '{table.layer.name}' has {rows} rows, but {takes} "
                f"{table.length} positions: positions {rows} to {table.length - 1} have no row",
                details={"rows": rows, "positions": table.length},
            )
