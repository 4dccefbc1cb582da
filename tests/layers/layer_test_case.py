"""One call checks what every reference layer must do (after KerasHub's `run_layer_test`):
output shape, dtype (the layer's compute dtype, as Keras's own layers give under a mixed
policy) and finiteness, weight counts, config round trip, `.keras` save and reload without
`custom_objects`, and real training steps that move the weights."""

from __future__ import annotations

import keras
import numpy as np


def _inputs_like(data):
    arrays = data if isinstance(data, (list, tuple)) else [data]
    return [keras.Input(array.shape[1:], dtype=str(array.dtype)) for array in arrays]


def run_layer_test(
    layer_cls,
    init_kwargs: dict,
    input_data,
    expected_output_shape: tuple,
    expected_num_trainable_weights: int,
    tmp_path,
    expected_num_non_trainable_weights: int = 0,
):
    layer = layer_cls(**init_kwargs)
    output = layer(input_data)
    assert tuple(output.shape) == tuple(expected_output_shape)
    assert keras.backend.standardize_dtype(output.dtype) == layer.compute_dtype
    assert np.isfinite(keras.ops.convert_to_numpy(keras.ops.cast(output, "float32"))).all()
    assert len(layer.trainable_weights) == expected_num_trainable_weights
    assert len(layer.non_trainable_weights) == expected_num_non_trainable_weights

    config = layer.get_config()
    assert layer_cls.from_config(config).get_config() == config

    inputs = _inputs_like(input_data)
    outputs = layer_cls(**init_kwargs)(inputs if len(inputs) > 1 else inputs[0])
    model = keras.Model(inputs, outputs)
    path = tmp_path / f"{layer_cls.__name__}.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)  # no custom_objects: registered by nandoctor
    np.testing.assert_allclose(
        np.asarray(reloaded.predict(input_data, verbose=0), "float32"),
        np.asarray(model.predict(input_data, verbose=0), "float32"),
        atol=1e-6,
    )

    if expected_num_trainable_weights:
        before = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        target = np.random.default_rng(0).normal(size=np.shape(model.predict(input_data, verbose=0))).astype("float32")
        # Three steps: under mixed_float16 the LossScaleOptimizer that compile() adds skips a step
        # whose gradients overflow at its starting scale (32768), as it is meant to.
        history = model.fit(input_data, target, epochs=3, batch_size=len(target), verbose=0)
        assert np.isfinite(history.history["loss"]).all()
        after = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
        assert any(not np.array_equal(b, a) for b, a in zip(before, after)), "training changed no weight"
    return layer
