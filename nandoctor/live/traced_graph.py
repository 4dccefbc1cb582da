"""The model's traced graph, forward pass and compiled loss in one, shared by the checks that
read it: tracing a large model is the costliest part of `check()`, so it is done once per view.

The forward pass comes first in the graph; the operations after the `nandoctor_forward_end`
marker are the loss's. Keras's warnings raised while tracing are kept with it (the TensorFlow
backend warns when a cross-entropy from logits gets a softmax).
"""

from __future__ import annotations

import warnings
import weakref
from dataclasses import dataclass, field

import numpy as np

from nandoctor.live.model_inputs import once_per_view, probe_inputs

FORWARD_END = "nandoctor_forward_end"
_TRACED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclass
class TracedGraph:
    forward: list = field(default_factory=list)  # the forward pass's operations, in order
    loss: list = field(default_factory=list)  # the operations the compiled loss adds
    warnings: list[str] = field(default_factory=list)


def traced_graph(model, view) -> TracedGraph | None:
    """The model's graph, traced once per view; None for a model that cannot be traced."""
    return once_per_view(_TRACED, model, view, lambda: _traced_with_warnings(model, view))


def _traced_with_warnings(model, view) -> TracedGraph | None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        traced = _trace(model, view)
    if traced is not None:
        traced.warnings = [str(warning.message) for warning in caught]
    return traced


def _trace(model, view) -> TracedGraph | None:
    import keras
    import tensorflow as tf

    inputs = probe_inputs(model, view)
    x_spec = inputs.pack({slot.name: tf.TensorSpec(slot.shape, slot.dtype) for slot in inputs.slots})

    def forward(x):
        return model(x, training=False)

    def forward_and_loss(x, y):
        y_pred = model(x, training=False)
        tf.identity(keras.tree.flatten(y_pred)[0], name=FORWARD_END)
        return model.compute_loss(x=x, y=y, y_pred=y_pred)

    if getattr(model, "compiled", False):
        outputs = model(inputs.typical(np.random.default_rng(0)), training=False)
        # Targets shaped like the labels (sparse) or like the outputs (dense): the loss decides.
        sparse = keras.tree.map_structure(lambda o: tf.TensorSpec((None, *o.shape[1:-1]), "int32"), outputs)
        dense = keras.tree.map_structure(lambda o: tf.TensorSpec((None, *o.shape[1:]), "float32"), outputs)
        for y_spec in (sparse, dense):
            try:
                graph = tf.function(forward_and_loss).get_concrete_function(x_spec, y_spec).graph
            except Exception:  # targets of the other form, or a loss that cannot be traced
                continue
            operations = graph.get_operations()
            end = next(i for i, op in enumerate(operations) if op.name.endswith(FORWARD_END))
            return TracedGraph(operations[:end], operations[end + 1 :])
    try:
        return TracedGraph(tf.function(forward).get_concrete_function(x_spec).graph.get_operations())
    except Exception:  # a model that cannot be traced symbolically is not judged
        return None
