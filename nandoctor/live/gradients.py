"""Gradients of a live model on the backend it runs on: TensorFlow's GradientTape, `jax.grad`
through the model's stateless call, or PyTorch's autograd. The probes and the replay ask here,
so they run on every backend the same way."""

from __future__ import annotations

import numpy as np

from nandoctor.live.live_check import model_backend
from nandoctor.live.model_inputs import to_host


def outputs_and_gradients(model, inputs) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The model's outputs on `inputs`, flattened, and the gradients of their sum with respect
    to its trainable weights (a weight the sum does not reach is left out)."""
    import keras

    backend = model_backend(model)
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        non_trainable = [v.value for v in model.non_trainable_variables]

        def total(trainable):
            outputs, _ = model.stateless_call(trainable, non_trainable, inputs, training=False)
            flat = keras.tree.flatten(outputs)
            return sum(jnp.sum(o.astype("float32")) for o in flat), flat

        (_, flat), gradients = jax.value_and_grad(total, has_aux=True)([v.value for v in model.trainable_variables])
        return [np.asarray(o) for o in flat], [np.asarray(g) for g in gradients]
    if backend == "torch":
        flat = keras.tree.flatten(model(inputs, training=False))
        gradients = _torch_gradients(sum(o.float().sum() for o in flat), model.trainable_variables)
        return [to_host(o) for o in flat], [g for g in gradients if g is not None]
    import tensorflow as tf

    with tf.GradientTape() as tape:
        flat = keras.tree.flatten(model(inputs, training=False))
        loss = tf.add_n([tf.reduce_sum(tf.cast(o, "float32")) for o in flat])
    # An embedding's gradient is sparse (IndexedSlices): densify it to read it.
    gradients = [
        np.asarray(tf.convert_to_tensor(g)) for g in tape.gradient(loss, model.trainable_weights) if g is not None
    ]
    return [np.asarray(o) for o in flat], gradients


def loss_gradients(model, x, y) -> list[np.ndarray | None]:
    """The gradients of the compiled loss on `(x, y)` with respect to the trainable weights,
    in their order (the outputs' sum for a model that is not compiled); JAX and PyTorch
    (TensorFlow's replay takes its own, with the layers' outputs)."""
    import keras

    if model_backend(model) == "torch":
        prediction = model(x, training=False)
        return _torch_gradients(_torch_loss(model, x, y, prediction), model.trainable_variables)
    import jax
    import jax.numpy as jnp

    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    if getattr(model, "compiled", False):
        metrics = [v.value for v in model.metrics_variables]

        def loss(t):
            return model.compute_loss_and_updates(t, non_trainable, metrics, x, y, None, training=False)[0]
    else:

        def loss(t):
            outputs, _ = model.stateless_call(t, non_trainable, x, training=False)
            return sum(jnp.sum(o.astype("float32")) for o in keras.tree.flatten(outputs))

    return [np.asarray(g) for g in jax.grad(loss)(trainable)]


def torch_replay_gradients(model, x, y, outputs: list, prediction) -> tuple[list, list]:
    """PyTorch: the gradients of the loss with respect to each layer's output in `outputs` (all
    computed in one graph, as TensorFlow's tape watches them) and to the trainable weights;
    None where the loss does not reach."""
    weights = model.trainable_variables
    gradients = _torch_gradients(_torch_loss(model, x, y, prediction), list(outputs) + list(weights))
    return gradients[: len(outputs)], gradients[len(outputs) :]


def _torch_loss(model, x, y, prediction):
    if getattr(model, "compiled", False):
        return model.compute_loss(x=x, y=y, y_pred=prediction, training=False)
    import keras

    return sum(o.float().sum() for o in keras.tree.flatten(prediction))


def _torch_gradients(total, wrt) -> list[np.ndarray | None]:
    import keras
    import torch

    tensors = [w.value if isinstance(w, keras.Variable) else w for w in wrt]
    reachable = [i for i, t in enumerate(tensors) if t.requires_grad]
    if not total.requires_grad or not reachable:
        return [None] * len(tensors)
    found = torch.autograd.grad(total, [tensors[i] for i in reachable], allow_unused=True)
    gradients: list[np.ndarray | None] = [None] * len(tensors)
    for i, gradient in zip(reachable, found):
        gradients[i] = None if gradient is None else to_host(gradient)
    return gradients
