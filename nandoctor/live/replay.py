"""Finding where a non-finite value starts: one batch replayed eagerly, layer by layer.

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

from nandoctor.live.gradients import loss_gradients, torch_replay_gradients
from nandoctor.live.live_check import model_backend
from nandoctor.live.model_inputs import input_nest, is_finite, to_host


@dataclass
class Localization:
    forward_culprit: str | None = None
    forward_propagators: list[str] = field(default_factory=list)
    backward_culprit: str | None = None
    nonfinite_weight_gradients: list[str] = field(default_factory=list)
    note: str | None = None

    def to_dict(self) -> dict:
        return {key: value for key, value in self.__dict__.items() if value not in (None, [])}

    def describe(self) -> str:
        if self.note:
            return self.note
        parts = []
        if self.forward_culprit:
            parts.append(f"the first non-finite output is made by layer '{self.forward_culprit}' from finite inputs (the culprit)")
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


def localize(model, sample) -> Localization:
    """Where the sample first turns non-finite; a model that cannot be replayed layer by layer
    (subclassed, or a layer called twice) says so in the note."""
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
        return _backward(_forward(layers, _layer_outputs(probe, x)), layers, [], model.trainable_variables,
                         loss_gradients(model, x, y))
    if backend == "torch":
        outputs = _layer_outputs(probe, x)
        prediction = outputs[layers.index(_output_layer(model, layers))]
        output_gradients, weight_gradients = torch_replay_gradients(model, x, y, outputs, prediction)
        return _backward(_forward(layers, outputs), layers, output_gradients, model.trainable_variables,
                         weight_gradients)
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
    weight_gradients = [tf.convert_to_tensor(g) if g is not None else None for g in gradients[len(outputs):]]
    return _backward(result, layers, gradients[: len(outputs)], weights, weight_gradients)


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
