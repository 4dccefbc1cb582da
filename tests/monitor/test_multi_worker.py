"""The Monitor under tf.distribute.MultiWorkerMirroredStrategy, two worker processes on this
machine (localhost TF_CONFIG): the same finding at the same step as on one device, printed and
logged once (by the chief), and the stop and the restore applied on both workers.

Keras 3.15's own `fit` fails under this strategy before any callback runs
(keras-team/keras#20585, tensorflow/tensorflow#72388), in two places that the worker script
mends for its own process: the first batch is reduced across replicas as one nested value to
build the model's shapes, and the logged loss is averaged over replicas along an axis it does
not have. Nothing of nandoctor is patched."""

import json
import os
import socket
import subprocess
import sys
import textwrap

from tests.conftest import ROOT

WORKER = textwrap.dedent(
    """
    import json, os, sys
    mode, index, log_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    sys.path.insert(0, os.getcwd())
    import tensorflow as tf
    import keras, numpy as np, nandoctor
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer as tf_trainer
    from tests.monitor.divergences import learning_rate_overflow

    def build_from_local_batch(self, iterator=None, data_batch=None):  # keras-team/keras#20585
        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = tree.map_structure(lambda v: self.distribute_strategy.experimental_local_results(v)[0],
                                                next(batches))
                break
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    keras_reduce = tf_trainer.reduce_per_replica
    def reduce_scalars_too(values, strategy, reduction):  # tensorflow/tensorflow#72388
        if tf_trainer._collective_all_reduce_multi_worker(strategy) and reduction in ("auto", "mean"):
            return tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return keras_reduce(values, strategy, reduction)

    tf_trainer.TensorFlowTrainer._maybe_symbolic_build = build_from_local_batch
    tf_trainer.reduce_per_replica = reduce_scalars_too

    strategy = tf.distribute.MultiWorkerMirroredStrategy() if mode == "workers" else tf.distribute.get_strategy()
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model, x, y, batch, epochs = learning_rate_overflow()
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch * strategy.num_replicas_in_sync)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    monitor = nandoctor.Monitor(on_nonfinite="stop", restore_last_good=True, log_dir=log_dir)
    model.fit(data.with_options(options), epochs=5, verbose=0, callbacks=[monitor])
    weights = [w.tolist() for w in model.get_weights()]
    print("RESULT " + json.dumps({"replicas": strategy.num_replicas_in_sync, "steps_run": int(model.optimizer.iterations.numpy()),
                                  "findings": [[f.code, f.details.get("step")] for f in monitor.report.findings],
                                  "restored": monitor.restored, "weights": weights}), flush=True)
    """
)


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start(mode: str, index: int, log_dir, cluster=None) -> subprocess.Popen:
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3", "NO_COLOR": "1"}
    if cluster:
        env["TF_CONFIG"] = json.dumps({"cluster": {"worker": cluster}, "task": {"type": "worker", "index": index}})
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, mode, str(index), str(log_dir)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen) -> tuple[dict, list[str]]:
    try:
        stdout, stderr = process.communicate(timeout=300)
    except subprocess.TimeoutExpired:  # a worker left alone waits forever in its all-reduce
        process.kill()
        stdout, stderr = process.communicate()
    results = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert results, stderr[-3000:]
    printed = [line for line in stderr.splitlines() if line.startswith("nandoctor: ")]
    return json.loads(results[0][len("RESULT ") :]), printed


def log_lines(log_dir) -> list[dict]:
    return [json.loads(line) for line in (log_dir / "nandoctor-health.jsonl").read_text().splitlines()]


def test_two_workers_find_the_same_step_as_one_device_say_it_once_and_both_restore(tmp_path):
    one = start("single", 0, tmp_path / "single")
    alone, alone_printed = finish(one)
    cluster = [f"localhost:{port}" for port in free_ports(2)]
    workers = [start("workers", index, tmp_path / "workers", cluster) for index in (0, 1)]
    try:
        (chief, chief_printed), (other, other_printed) = [finish(worker) for worker in workers]
    finally:
        for worker in workers:  # one that failed leaves the other waiting for it
            if worker.poll() is None:
                worker.kill()

    nonfinite = [step for code, step in alone["findings"] if code == "ND702"]
    assert alone["replicas"] == 1 and nonfinite and alone["restored"]
    assert chief["replicas"] == other["replicas"] == 2
    for worker in (chief, other):
        assert worker["findings"] == alone["findings"]  # the same codes at the same steps
        assert worker["restored"] and worker["steps_run"] == alone["steps_run"]  # both stopped there
    assert chief["weights"] == other["weights"]  # the restore landed on both replicas
    # Printed and logged once, by the chief, as on one device.
    assert [line.split(":")[1] for line in chief_printed] == [line.split(":")[1] for line in alone_printed]
    assert other_printed == []
    logged = log_lines(tmp_path / "workers")
    assert [line["step"] for line in logged] == [line["step"] for line in log_lines(tmp_path / "single")]
