from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import numpy as np

from nandoctor.analysis.keras_facts import (
    TIED_EMBEDDING_CLASSES,
    looks_like_hand_written_tie,
)
from nandoctor.analysis.precision import FLOAT_FORMATS
from nandoctor.errors import first_line
from nandoctor.live.live_check import LiveCheck
from nandoctor.live.model_inputs import input_nest, probe_inputs, to_host
from nandoctor.live.model_layers import every_layer, layer_named
from nandoctor.report import Confidence, Evidence, Finding
from nandoctor.rules.broken_tie import BrokenTie


class TieProbe(LiveCheck):
    """## What it does
    Saves the model to a temporary `.keras`, reloads it, and checks that each declared tie
    between the input embedding and the output projection still holds, then again after one
    training step on the reloaded copy.

    ## Why is this bad?
    A tie held by a Python reference (field report B) trains, but is not in the file: the
    model fails to reload, or reloads with two separate matrices that the next training step
    pulls apart. The file scan can suspect it from the config; only a round trip proves it.
    """

    name = "tie-probe"
    raises = (BrokenTie,)

    def run(self, model, view=None) -> Iterator[Finding]:
        import keras

        tied = [layer for layer in every_layer(model) if _declares_tie(layer)]
        if not tied:
            return
        with tempfile.TemporaryDirectory(prefix="nandoctor-tie-") as folder:
            path = os.path.join(folder, "round_trip.keras")
            try:
                model.save(path)
                reloaded = keras.models.load_model(path, safe_mode=False)
            except Exception as error:
                names = ", ".join(f"'{layer.name}'" for layer in tied)
                yield self._finding(
                    tied[0].name,
                    f"saving and reloading the model fails ({type(error).__name__}: {first_line(error)}): "
                    f"the tie held by {names} does not survive the file",
                    stage="reload",
                )
                return
        for layer in tied:
            copy = layer_named(reloaded, layer.name)
            if copy is None:
                continue
            if not _still_tied(copy):
                yield self._finding(
                    layer.name, f"after reloading, '{layer.name}' no longer shares one matrix", stage="reload"
                )
                continue
            _train_one_step(reloaded)
            if not _still_tied(copy):
                yield self._finding(
                    layer.name,
                    f"after reloading and one training step, '{layer.name}' is no longer tied",
                    stage="training",
                )

    def _finding(self, layer: str, message: str, **details) -> Finding:
        return BrokenTie.finding(
            layer,
            message,
            confidence=Confidence.HIGH,
            evidence=Evidence.MEASURED,
            measured=message,
            details={"probe": "save, reload, train one step", **details},
        )


def _declares_tie(layer) -> bool:
    if type(layer).__name__ in TIED_EMBEDDING_CLASSES:
        return bool(getattr(layer, "tie_weights", True))
    return looks_like_hand_written_tie(type(layer).__name__, type(layer).__module__)


def _still_tied(layer) -> bool:
    """The reverse projection is `h @ E^T` with the layer's one embedding matrix, to the rounding
    of the dtype it computes in: a float16 product of a tied matrix differs from the float32 one
    by its rounding, an untied matrix by the size of the values themselves."""
    if type(layer).__name__ not in TIED_EMBEDDING_CLASSES:
        return True  # a hand-written tie that reloaded: nothing further to prove here
    table = to_host(layer.embeddings, np.float64)
    hidden = np.random.default_rng(0).normal(size=(3, table.shape[1]))
    projected = to_host(layer(hidden.astype("float32"), reverse=True), np.float64)
    compute = FLOAT_FORMATS.get(str(getattr(layer, "compute_dtype", "float32")), FLOAT_FORMATS["float32"])
    # Inputs and result rounded to the compute dtype (the sum accumulates in float32): a few of its
    # resolutions of the sum of |terms|; an independent matrix misses by about 1/sqrt(width) of it.
    bound = 4 * max(compute.resolution, 1e-6) * (np.abs(hidden) @ np.abs(table.T)) + 1e-5
    return len(layer.weights) == 1 and bool((np.abs(projected - hidden @ table.T) <= bound).all())


def _train_one_step(model) -> None:
    import keras

    rng = np.random.default_rng(0)
    inputs = probe_inputs(model)
    x = inputs.typical(rng)
    try:
        # A plain functional model over the same layers: a task model's own training step
        # (KerasHub's) expects its own targets and metrics.
        trainer = keras.Model(input_nest(model), model.output)
    except Exception:  # subclassed: trained as it is
        trainer = model
    outputs = keras.tree.flatten(trainer(x))
    trainer.compile(keras.optimizers.SGD(0.1), loss=["mse"] * len(outputs))
    targets = [rng.normal(size=tuple(np.shape(o))).astype("float32") for o in outputs]
    trainer.train_on_batch(x, targets if len(targets) > 1 else targets[0])
