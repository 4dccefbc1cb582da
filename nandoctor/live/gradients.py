"""Gradients of a live model's weights on the backend it runs on: TensorFlow's GradientTape,
or `jax.grad` through the model's stateless call. The probes and the replay ask here, so they
run on both backends the same way."""

from __future__ import annotations

import numpy as np

from nandoctor.live.live_check import model_backend


def outputs_and_gradients(model, inputs) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The model's outputs on `inputs`, flattened, and the gradients of their sum with respect
    to its trainable weights (a weight the sum does not reach is left out)."""
    import keras

    if model_backend(model) == "jax":
        import jax
        import jax.numpy as jnp

        non_trainable = [v.value for v in model.non_trainable_variables]

        def total(trainable):
            outputs, _ = model.stateless_call(trainable, non_trainable, inputs, training=False)
            flat = keras.tree.flatten(outputs)
            return sum(jnp.sum(o.astype("float32")) for o in flat), flat

        (_, flat), gradients = jax.value_and_grad(total, has_aux=True)(
            [v.value for v in model.trainable_variables])
        return [np.asarray(o) for o in flat], [np.asarray(g) for g in gradients]
    import tensorflow as tf

    with tf.GradientTape() as tape:
        flat = keras.tree.flatten(model(inputs, training=False))
        loss = tf.add_n([tf.reduce_sum(tf.cast(o, "float32")) for o in flat])
    # An embedding's gradient is sparse (IndexedSlices): densify it to read it.
    gradients = [np.asarray(tf.convert_to_tensor(g)) for g in tape.gradient(loss, model.trainable_weights)
                 if g is not None]
    return [np.asarray(o) for o in flat], gradients


def loss_gradients(model, x, y) -> list[np.ndarray | None]:
    """The gradients of the compiled loss on `(x, y)` with respect to the trainable weights,
    in their order (the outputs' sum for a model that is not compiled); JAX only."""
    import jax
    import jax.numpy as jnp
    import keras

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
