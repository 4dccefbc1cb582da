"""The Monitor under tf.distribute.MirroredStrategy on two logical CPU devices. Logical
devices must be set before TensorFlow starts, so this runs in a fresh process."""

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import os
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, numpy as np, nandoctor
    keras.utils.set_random_seed(0)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    x = np.random.default_rng(0).normal(size=(1200, 8)).astype("float32")
    with strategy.scope():
        inputs = keras.Input((8,))
        h = keras.layers.Dense(8, use_bias=False, kernel_regularizer=keras.regularizers.L2(0.25), name="shrinking")(inputs)
        h = keras.layers.Lambda(lambda t: t + 0.0 * t / keras.ops.sqrt(keras.ops.sum(t * t, -1, keepdims=True)))(h)
        model = keras.Model(inputs, h)
        model.compile(keras.optimizers.SGD(0.1), "mse")
        monitor = nandoctor.Monitor(verbose=0, restore_last_good=True, on_nonfinite="stop")
        model.fit(x, np.zeros_like(x), batch_size=2, epochs=1, verbose=0, callbacks=[monitor])
    finite = all(np.isfinite(w).all() for w in model.get_weights())
    print("RESULT", strategy.num_replicas_in_sync, sorted(f.code for f in monitor.report.findings), monitor.restored, finite)
    """
)


def test_monitor_works_under_mirrored_strategy_with_two_devices():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert "RESULT 2 ['ND701', 'ND702'] True True" in result.stdout, result.stderr[-3000:]
