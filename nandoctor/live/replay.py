"""Finding where a non-finite value starts: one batch replayed eagerly, layer by layer.

Before anything runs, the sample's inputs and targets are checked: a NaN in the data is named
by its input and rows, not blamed on the first layer that reads it.

The replay uses the weights of the last good check (the current ones are already NaN
everywhere), so it re-runs the step that broke. Forward: the first layer whose output is
non-finite while every input is finite is the culprit; the layers after it propagate.
Backward (TensorFlow, PyTorch): the gradient of the loss with respect to each layer's output
names the layer where the backward pass first turns non-finite; on JAX, the weights whose
gradients are non-finite are named. Eager, so a model compiled with XLA is replayed the
same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nandoctor.live.gradients import loss_gradients, torch_replay_gradients
from nandoctor.live.live_check import model_backend
from nandoctor.live.model_inputs import input_nest, is_finite, to_host

# The rows a message lists; the finding's details keep up to ROWS_KEPT.
ROWS_SHOWN = 5
ROWS_KEPT = 100
# float16's largest finite value.
FLOAT16_LARGEST = 65504.0


@dataclass
class Localization:
    forward_culprit: str | None = None
    forward_propagators: list[str] = field(default_factory=list)
    backward_culprit: str | None = None
    nonfinite_weight_gradients: list[str] = field(default_factory=list)
    # The culprit's compute dtype, and whether its output holds an infinity (an overflow).
    culprit_compute_dtype: str | None = None
    culprit_overflows: bool = False
    # The sample's non-finite data: input name -> its rows, and the target's rows.
    nonfinite_inputs: dict[str, list[int]] = field(default_factory=dict)
    nonfinite_targets: list[int] = field(default_factory=list)
    rows: int | None = None  # the sample's rows, where its data is non-finite
    # The graph checks' cure for the unguarded division or root they find in the culprit.
    culprit_fix: str | None = None
    note: str | None = None

    def to_dict(self) -> dict:
        return {key: value for key, value in self.__dict__.items() if value not in (None, [], {}, False)}

    @property
    def float16_overflow(self) -> bool:
        return self.culprit_overflows and self.culprit_compute_dtype == "float16"

    def describe(self) -> str:
        if self.note:
            return self.note
        if self.nonfinite_inputs or self.nonfinite_targets:
            named = [(f"input '{name}'", rows) for name, rows in self.nonfinite_inputs.items()]
            named += [("the targets", self.nonfinite_targets)] if self.nonfinite_targets else []
            return "; ".join(f"{what} holds non-finite values in {_rows(rows, self.rows)}" for what, rows in named)
        parts = []
        if self.float16_overflow:
            parts.append(
                f"the first non-finite output is made by layer '{self.forward_culprit}' from finite inputs: it "
                f"computes in float16 and its output passes {FLOAT16_LARGEST:g}, float16's largest value (the culprit)"
            )
        elif self.forward_culprit:
            parts.append(
                f"the first non-finite output is made by layer '{self.forward_culprit}' from finite inputs (the culprit)"
            )
        elif self.backward_culprit:
            parts.append(
                f"the forward pass is finite; the backward pass first turns non-finite at layer '{self.backward_culprit}' "
                "(a finite value with an infinite derivative, such as sqrt at 0)"
            )
        else:
            parts.append("the replayed batch stays finite")
        if self.forward_propagators:
            count = len(self.forward_propagators)
            parts.append(f"{count} later layer{'s' if count > 1 else ''} only propagate{'' if count > 1 else 's'} it")
        return "; ".join(parts)


def _rows(rows: list[int], total: int | None) -> str:
    shown = ", ".join(str(row) for row in rows[:ROWS_SHOWN]) + (", ..." if len(rows) > ROWS_SHOWN else "")
    count = f"{len(rows)} of {total}" if total is not None else str(len(rows))
    return f"{count} rows ({shown})"


def nonfinite_data(model, sample) -> Localization | None:
    """The sample's inputs and targets that hold a NaN or an infinity, by name and row; None
    where every value is finite (or the sample is not `(x, y)`)."""
    if not isinstance(sample, (tuple, list)) or len(sample) < 2:
        return None
    x, y = sample[0], sample[1]
    result = Localization()
    for name, values in _named(x, _input_names(model)):
        rows = _nonfinite_rows(values)
        if rows:
            result.nonfinite_inputs[name] = rows[:ROWS_KEPT]
            result.rows = len(values)
    for _, values in _named(y, []):
        rows = _nonfinite_rows(values)
        if rows:
            result.nonfinite_targets = sorted(set(result.nonfinite_targets) | set(rows))[:ROWS_KEPT]
            result.rows = len(values)
    return result if result.nonfinite_inputs or result.nonfinite_targets else None


def _input_names(model) -> list[str]:
    """The model's inputs by their input layers' names (`keras.Input(name=...)`): a tensor's
    own name is an internal `keras_tensor_N`."""
    inputs = getattr(model, "inputs", None) or []
    names = []
    for index, tensor in enumerate(inputs):
        history = getattr(tensor, "_keras_history", None)
        names.append(history[0].name if history is not None else getattr(tensor, "name", None) or f"input_{index}")
    return names


def _named(data, names: list[str]) -> list[tuple[str, np.ndarray]]:
    """Each array of a dict, list or single array, with its name."""
    if data is None:
        return []
    if isinstance(data, dict):
        return [(str(key), to_host(value)) for key, value in data.items()]
    if isinstance(data, (list, tuple)):
        return [(names[i] if i < len(names) else f"input_{i}", to_host(value)) for i, value in enumerate(data)]
    return [(names[0] if names else "x", to_host(data))]


def _nonfinite_rows(values: np.ndarray) -> list[int]:
    if (values.dtype.kind not in "fc" and values.dtype.name != "bfloat16") or values.ndim == 0:
        return []
    bad = ~np.isfinite(values).reshape(len(values), -1).all(axis=1)
    return [int(row) for row in np.flatnonzero(bad)]


def localize(model, sample) -> Localization:
    """Where the sample first turns non-finite: its own data, if that is non-finite, else the
    layer; a model that cannot be replayed layer by layer (subclassed, or a layer called
    twice) says so in the note."""
    data = nonfinite_data(model, sample)
    if data is not None:
        return data
    try:
        return _localize(model, sample)
    except Exception as error:  # the finding stands without a culprit
        return Localization(note=f"cannot replay this model layer by layer ({type(error).__name__})")


def _localize(model, sample) -> Localization:
    import keras

    x, y = sample
    layers = [layer for layer in model.layers if layer.__class__.__name__ != "InputLayer"]
    probe = keras.Model(input_nest(model), [layer.output for layer in layers])
    backend = model_backend(model)
    if backend == "jax":
        # jax.grad reaches the weights, not a layer's output in the middle of the model: no
        # backward culprit on JAX, the weights whose gradients break are still named.
        return _backward(
            _forward(layers, _layer_outputs(probe, x)),
            layers,
            [],
            model.trainable_variables,
            loss_gradients(model, x, y),
        )
    if backend == "torch":
        outputs = _layer_outputs(probe, x)
        prediction = outputs[layers.index(_output_layer(model, layers))]
        output_gradients, weight_gradients = torch_replay_gradients(model, x, y, outputs, prediction)
        return _backward(
            _forward(layers, outputs), layers, output_gradients, model.trainable_variables, weight_gradients
        )
    import tensorflow as tf

    with tf.GradientTape() as tape:
        outputs = _layer_outputs(probe, x)
        for output in outputs:
            tape.watch(output)
        prediction = outputs[layers.index(_output_layer(model, layers))]
        try:
            loss = model.compute_loss(x=x, y=y, y_pred=prediction)
        except ValueError:  # not compiled: the gradient of the outputs' sum
            loss = tf.reduce_sum(tf.cast(prediction, "float32"))
    result = _forward(layers, outputs)
    if loss is None:
        return result
    weights = [w for layer in layers for w in layer.trainable_weights]
    gradients = tape.gradient(loss, outputs + weights)
    weight_gradients = [tf.convert_to_tensor(g) if g is not None else None for g in gradients[len(outputs) :]]
    return _backward(result, layers, gradients[: len(outputs)], weights, weight_gradients)


def cure_in(model, layer: str, forward: bool) -> str | None:
    """The fix the graph checks give what they find in `layer`: for a NaN the forward pass made,
    the unguarded division (a masked mean's count, a norm, a float16 denominator...); for one
    only the backward pass made, the singular root. None where they find neither, or cannot
    read the model's graph."""
    from nandoctor.live.graph_checks import GraphChecks
    from nandoctor.live.model_view import view_of_model

    try:
        view = view_of_model(model)
        found = {f.code: f.fix for f in GraphChecks().run(model, view) if f.layer == layer}
    except Exception:  # a graph that cannot be traced: the finding keeps its general fix
        return None
    first, then = ("ND201", "ND202") if forward else ("ND202", "ND201")
    return found.get(first) or found.get(then)


def layers_given_zero_vectors(model, x) -> list[str]:
    """The layers that receive, from another layer, a vector (along the last axis) that is
    exactly zero, on `x`, in the order they run: where a norm, a square root or a division of
    that vector sits at its singular point. Empty for a model that cannot be replayed."""
    import keras

    try:
        layers = [layer for layer in model.layers if layer.__class__.__name__ != "InputLayer"]
        outputs = _layer_outputs(keras.Model(input_nest(model), [layer.output for layer in layers]), x)
    except Exception:  # subclassed, or a layer called twice: nothing measured
        return []
    zero_vector = {layer.name: _holds_zero_vector(output) for layer, output in zip(layers, outputs)}
    return [layer.name for layer in layers if any(zero_vector.get(inbound) for inbound in _inbound_names(layer))]


def _holds_zero_vector(tensor) -> bool:
    values = to_host(tensor)
    if values.dtype.kind != "f" or values.ndim < 2 or values.shape[-1] < 2:  # ids, masks, scalars per sample
        return False
    return bool((values == 0).all(axis=-1).any())


def _layer_outputs(probe, x) -> list:
    outputs = probe(x, training=False)
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def _backward(result: Localization, layers, output_gradients, weights, weight_gradients) -> Localization:
    """The layer where the backward pass turns non-finite, and the weights whose gradients are.

    The culprit receives a finite gradient at its output and passes a non-finite one to its
    inputs (the outputs of the layers that feed it): the last such layer from the output back,
    as the backward pass runs. Layers before it only carry the NaN."""
    finite = {layer.name: gradient is None or is_finite(gradient) for layer, gradient in zip(layers, output_gradients)}
    for layer in reversed(layers if finite else []):  # no output gradients (JAX): no culprit
        if finite[layer.name] and not all(finite.get(inbound, True) for inbound in _inbound_names(layer)):
            result.backward_culprit = layer.name
            break
    result.nonfinite_weight_gradients = [
        w.path for w, g in zip(weights, weight_gradients) if g is not None and not is_finite(g)
    ]
    return result


def _forward(layers, outputs) -> Localization:
    """The first layer whose output is non-finite from finite inputs, and those that carry it."""
    result = Localization()
    finite = {}
    for layer, output in zip(layers, outputs):
        ok = is_finite(output)
        finite[layer.name] = ok
        if not ok:
            inputs_ok = all(finite.get(inbound, True) for inbound in _inbound_names(layer))
            if result.forward_culprit is None and inputs_ok:
                result.forward_culprit = layer.name
                result.culprit_compute_dtype = getattr(layer, "compute_dtype", None)
                result.culprit_overflows = bool(np.isinf(to_host(output, np.float32)).any())
            else:
                result.forward_propagators.append(layer.name)
    return result


def _output_layer(model, layers):
    output = model.outputs[0]
    for layer in layers:
        if layer.output is output:
            return layer
    return layers[-1]


def _inbound_names(layer) -> list[str]:
    names = []
    for node in getattr(layer, "_inbound_nodes", []):
        for tensor in getattr(node, "input_tensors", []):
            history = getattr(tensor, "_keras_history", None)
            if history is not None:
                names.append(history[0].name)
    return names
