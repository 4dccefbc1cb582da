"""The Monitor's cost during training, measured on this machine's CPU (not a test).

A small transformer language model (2 blocks, width 128, sequence length 64, batch 32)
with a vocabulary of 2,000, and the same with 100,000 (about 26M parameters, where pulling
weights to the host costs more). Epochs with and without a callback alternate in one
process; the cost is the median, over the pairs, of the ratio of process CPU time (wall
time is too noisy on a shared machine). Beside the Monitor at its defaults: its every-step
look alone (the loss and one on-device number from every weight, which the Monitor adds to
its checks of the full statistics), Keras's TerminateOnNaN, a naive callback that calls
get_weights() every batch, and TensorFlow's enable_check_numerics. The small model again under
`mixed_float16` (float16 compute, the output in float32, compile's LossScaleOptimizer), where the
Monitor also reads the optimizer's step count at every step and the loss scale at its checks.
The same again on JAX and on PyTorch, each in a child process (the backend is fixed when Keras
is imported).

    python bench/monitor_overhead.py [--quick]
    python bench/monitor_overhead.py --small   # TensorFlow's small model only, float32 and
                                               # mixed_float16, its rows replaced in the stored results

Writes bench/results/monitor_overhead.json and the Monitor section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results" / "monitor_overhead.json"

import keras
import numpy as np
import tensorflow as tf
from doc_sections import DOC, replace_section

import nandoctor

LENGTH, WIDTH, BATCH, HEADS = 64, 128, 32, 4


def language_model(vocabulary: int, policy: str = "float32"):
    """Built under `policy`; the output layer in float32, as the Keras mixed-precision guide
    says, so compile wraps the optimizer in a LossScaleOptimizer under mixed_float16."""
    from nandoctor.layers import CausalSelfAttention, PositionEmbedding

    keras.mixed_precision.set_global_policy(policy)
    try:
        tokens = keras.Input((LENGTH,), dtype="int32")
        x = PositionEmbedding(LENGTH)(keras.layers.Embedding(vocabulary, WIDTH)(tokens))
        for _ in range(2):
            x = CausalSelfAttention(num_heads=HEADS, intermediate_dim=4 * WIDTH)(x)
        model = keras.Model(tokens, keras.layers.Dense(vocabulary, dtype="float32")(x))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


class TimedMonitor(nandoctor.Monitor):
    """The Monitor at its defaults, counting the process CPU time spent inside its own hooks:
    a direct share of the epoch, free of the epoch-to-epoch noise of the paired ratio (it
    leaves out what the Monitor costs outside them, such as Keras's logs synced every step)."""

    hook_seconds = 0.0

    def on_train_begin(self, logs=None):
        self._timed(super().on_train_begin, logs)

    def on_train_batch_end(self, batch, logs=None):
        self._timed(super().on_train_batch_end, batch, logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._timed(super().on_epoch_begin, epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._timed(super().on_epoch_end, epoch, logs)

    def on_train_end(self, logs=None):
        self._timed(super().on_train_end, logs)

    def _timed(self, hook, *args):
        start = time.process_time()
        hook(*args)
        self.hook_seconds += time.process_time() - start


class EveryStepLookOnly(keras.callbacks.Callback):
    """The Monitor's every-step look alone: the loss Keras hands over, and the kernel's one
    on-device number that says whether any weight is non-finite. The kernel is built once, as
    the Monitor keeps its own across `fit` calls."""

    kernel = None

    def on_train_begin(self, logs=None):
        if self.kernel is None:
            from nandoctor.monitor.stats import StatsKernel

            variables = self.model.trainable_variables
            self.kernel = StatsKernel(variables, [False] * len(variables), snapshots=False)

    def on_train_batch_end(self, batch, logs=None):
        self.model  # noqa: B018  (on JAX, Callback.model brings the weights back, as the Monitor's step read does)
        loss = (logs or {}).get("loss")
        (loss is not None and not math.isfinite(float(loss))) or self.kernel.any_nonfinite()


class GetWeightsEveryBatch(keras.callbacks.Callback):
    """The naive approach: pull every weight to the host at every batch."""

    def on_train_batch_end(self, batch, logs=None):
        weights = self.model.get_weights()
        any(not np.isfinite(w).all() for w in weights)


def epoch_cpu_seconds(model, data, callbacks) -> float:
    start = time.process_time()
    model.fit(data[0], data[1], batch_size=BATCH, epochs=1, verbose=0, callbacks=callbacks)
    return time.process_time() - start


def paired_overhead(model, data, make_callbacks, pairs: int, setup=None, teardown=None) -> dict:
    """Median over pairs of (epoch with the callback) / (epoch without) - 1, CPU time."""
    ratios, without, with_ = [], [], []
    for _ in range(pairs):
        base = epoch_cpu_seconds(model, data, [])
        if setup:
            setup(model)
        watched = epoch_cpu_seconds(model, data, make_callbacks())
        if teardown:
            teardown(model)
        ratios.append(watched / base - 1)
        without.append(base)
        with_.append(watched)
    return {
        "overhead": statistics.median(ratios),
        "pairs": pairs,
        "epoch_cpu_s_without": statistics.median(without),
        "epoch_cpu_s_with": statistics.median(with_),
    }


def check_numerics_on(model):
    tf.debugging.enable_check_numerics()
    model.make_train_function(force=True)


def check_numerics_off(model):
    tf.debugging.disable_check_numerics()
    model.make_train_function(force=True)


def measure(vocabulary: int, steps: int, pairs: int, compare_pairs: int, policy: str = "float32") -> dict:
    keras.utils.set_random_seed(0)
    model = language_model(vocabulary, policy)
    rng = np.random.default_rng(0)
    x = rng.integers(1, vocabulary, size=(steps * BATCH, LENGTH)).astype("int32")
    data = (x, np.roll(x, -1, axis=1))
    # One Monitor for the whole run, as a user passes one to fit; the warm-up epoch traces
    # both the training step and the Monitor's statistics.
    monitor = TimedMonitor(verbose=0)
    look = EveryStepLookOnly()
    epoch_cpu_seconds(model, data, [monitor])
    epoch_cpu_seconds(model, data, [look])
    in_hooks: list[float] = []
    epoch_cpu_seconds(model, data, [])
    result = {
        "vocabulary": vocabulary,
        "policy": policy,
        "parameters": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
        "steps_per_epoch": steps,
        "every_n_steps": monitor.every_n_steps,
        "monitor": paired_overhead(
            model,
            data,
            lambda: [monitor],
            pairs,
            setup=lambda _: setattr(monitor, "hook_seconds", 0.0),
            teardown=lambda _: in_hooks.append(monitor.hook_seconds),
        ),
    }
    if compare_pairs:
        result.update(
            every_step_look=paired_overhead(model, data, lambda: [look], compare_pairs),
            terminate_on_nan=paired_overhead(model, data, lambda: [keras.callbacks.TerminateOnNaN()], compare_pairs),
            get_weights_every_batch=paired_overhead(model, data, lambda: [GetWeightsEveryBatch()], compare_pairs),
        )
        if keras.backend.backend() == "tensorflow":  # a TensorFlow switch: nothing to compare elsewhere
            result["check_numerics"] = paired_overhead(
                model, data, list, compare_pairs, check_numerics_on, check_numerics_off
            )
    result["monitor"]["in_hooks"] = statistics.median(in_hooks) / result["monitor"]["epoch_cpu_s_without"]
    print(json.dumps(result, indent=2), flush=True)
    return result


BACKEND_NAMES = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}


def markdown(results: dict) -> str:
    rows = []
    for backend, models in results["backends"].items():
        for model in models:
            cells = [f"{model['monitor']['in_hooks'] * 100:.1f}%"] + [
                f"{model[key]['overhead'] * 100:+.1f}%" if key in model else "n/a"
                for key in (
                    "monitor",
                    "every_step_look",
                    "terminate_on_nan",
                    "get_weights_every_batch",
                    "check_numerics",
                )
            ]
            compared = model["terminate_on_nan"]["pairs"] if "terminate_on_nan" in model else 0
            policy = model.get("policy", "float32")  # results stored before the mixed_float16 rows
            when = f", measured {model['date']}" if model.get("date", results["date"]) != results["date"] else ""
            rows.append(
                f"| {BACKEND_NAMES[backend]} | vocabulary {model['vocabulary']:,}, {policy}{when} "
                f"({model['parameters'] / 1e6:.1f}M parameters, "
                f"{model['monitor']['epoch_cpu_s_without']:.1f} s CPU per epoch of {model['steps_per_epoch']} steps; "
                f"{model['monitor']['pairs']}/{compared} pairs) | " + " | ".join(cells) + " |"
            )
    versions = ", ".join(f"{BACKEND_NAMES[backend]} {version}" for backend, version in results["versions"].items())
    children = ", ".join(f"`KERAS_BACKEND={backend}`" for backend in results["backends"] if backend != "tensorflow")
    later = any(
        model.get("date", results["date"]) != results["date"]
        for models in results["backends"].values()
        for model in models
    )
    again = " (the rows with a date of their own were measured again later, alone: `--small`)" if later else ""
    return f"""<!-- monitor_overhead:start (written by bench/monitor_overhead.py; do not edit) -->
Measured {results["date"]} on this machine's CPU ({os.cpu_count()} cores), in one run{again}: {versions},
Keras {keras.__version__} (the other backends' rows each in a child process: {children}). The first column is the process
CPU time spent inside the Monitor's own hooks, as a share of an epoch without it (median over its epochs; target: at
most 3%). The others are the added process CPU time per epoch, the median over alternating pairs of epochs without
and with the callback (the pairs for the Monitor / for each other callback are given with the model; n/a: not
measured, see the benchmark's MODELS):

| backend | model | Monitor: CPU inside its hooks | Monitor (defaults), paired | its every-step look alone | TerminateOnNaN | get_weights() every batch | enable_check_numerics |
|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

The Monitor looks at every step (the loss, and one number computed on the device from every
weight) and takes its full statistics at the start of each `fit`, at its first 2 steps and every
10 steps; the benchmark's `fit` calls are one epoch each, so each pays that start. A negative
figure is noise (a callback cannot make training cheaper): it shows the resolution of a median
over few pairs on a shared 2-core machine.
<!-- monitor_overhead:end -->"""


# (vocabulary, steps per epoch, pairs for the Monitor, pairs for each other callback, policy), per
# backend. Under mixed_float16 only the Monitor is measured: the other callbacks do not read the
# precision, and float16 matmuls on a CPU cost several times float32's. Not on JAX: its CPU
# dot_general refuses the attention's float16 product with float32 accumulation ("precision
# 'F16_F16_F32' is not supported by dot_general on CPU", JAX 0.10.2).
# The large model's epoch costs about 3x more CPU on JAX and PyTorch than on TensorFlow here
# (about 100 s against 36 s), so there it gets two pairs and no other callback, to keep the whole
# run near an hour; the first column (CPU inside the Monitor's hooks) needs no pairing, and its
# median is over the Monitor's epochs.
MODELS = {
    "tensorflow": [(2000, 40, 6, 3, "float32"), (2000, 40, 4, 0, "mixed_float16"), (100_000, 12, 3, 1, "float32")],
    "jax": [(2000, 40, 6, 3, "float32"), (100_000, 12, 2, 0, "float32")],
    "torch": [(2000, 40, 6, 3, "float32"), (2000, 40, 4, 0, "mixed_float16"), (100_000, 12, 2, 0, "float32")],
}


def measure_all(quick: bool) -> list[dict]:
    if quick:
        policies = {policy for *_, policy in MODELS[keras.backend.backend()]}
        return [
            measure(2000, steps=4, pairs=2, compare_pairs=1 if policy == "float32" else 0, policy=policy)
            for policy in sorted(policies, key=lambda policy: policy != "float32")
        ]
    return [
        measure(vocabulary, steps, pairs, compare_pairs, policy)
        for vocabulary, steps, pairs, compare_pairs, policy in MODELS[keras.backend.backend()]
    ]


_CHILD_RESULT = "NANDOCTOR_BENCH_RESULT "


def measure_in_child(backend: str, quick: bool) -> dict:
    """The same models and callbacks in a child process on `backend` (fixed at import)."""
    import subprocess

    command = [sys.executable, __file__, "--backend-child"] + (["--quick"] if quick else [])
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "KERAS_BACKEND": backend})
    lines = [line for line in done.stdout.splitlines() if line.startswith(_CHILD_RESULT)]
    if done.returncode or not lines:
        raise SystemExit(f"the {backend} measurement failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len(_CHILD_RESULT) :])


def remeasure_small_models() -> None:
    """TensorFlow's small-vocabulary rows measured again, each dated, the stored others kept:
    the figure a change to the Monitor's hooks moves, in minutes rather than the hour of a full run."""
    results = json.loads(RESULTS.read_text())
    stored = results["backends"]["tensorflow"]
    for vocabulary, steps, pairs, compare_pairs, policy in MODELS["tensorflow"]:
        if vocabulary != 2000:
            continue
        row = {**measure(vocabulary, steps, pairs, compare_pairs, policy), "date": time.strftime("%Y-%m-%d")}
        same = [
            i
            for i, old in enumerate(stored)
            if (old["vocabulary"], old.get("policy", "float32")) == (vocabulary, policy)
        ]
        if same:
            stored[same[0]] = row
        else:  # after the float32 row of the same model
            beside = [i for i, old in enumerate(stored) if old["vocabulary"] == vocabulary]
            stored.insert(beside[-1] + 1 if beside else len(stored), row)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    replace_section("monitor_overhead", "Monitor overhead", markdown(results))
    print(f"wrote {RESULTS.relative_to(ROOT)} and {DOC.relative_to(ROOT)}")


def backend_version() -> str:
    backend = keras.backend.backend()
    return __import__(backend).__version__


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small vocabulary only, few steps and pairs (smoke test)")
    parser.add_argument(
        "--rewrite-doc", action="store_true", help="rewrite the docs section from the stored results, without measuring"
    )
    parser.add_argument(
        "--small",
        action="store_true",
        help="TensorFlow's small model only (float32 and mixed_float16): its rows replace the stored ones",
    )
    parser.add_argument("--backend-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rewrite_doc:
        replace_section("monitor_overhead", "Monitor overhead", markdown(json.loads(RESULTS.read_text())))
        return
    if args.small:
        remeasure_small_models()
        return
    if args.backend_child:
        print(_CHILD_RESULT + json.dumps({"models": measure_all(args.quick), "version": backend_version()}), flush=True)
        return
    if keras.backend.backend() != "tensorflow":
        raise SystemExit(
            "run this benchmark with the TensorFlow backend: it measures the others itself, in child processes"
        )
    results = {
        "date": time.strftime("%Y-%m-%d"),
        "versions": {"tensorflow": tf.__version__},
        "backends": {"tensorflow": measure_all(args.quick)},
    }
    for backend in ("jax", "torch"):
        if importlib.util.find_spec(backend) is None:  # the jax and torch extras: make bench installs them
            print(f"{backend} is not installed: no {BACKEND_NAMES[backend]} rows")
            continue
        child = measure_in_child(backend, args.quick)
        results["versions"][backend] = child["version"]
        results["backends"][backend] = child["models"]
    if not args.quick:
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
        replace_section(
            "monitor_overhead",
            "Monitor overhead",
            markdown(results),
            "`bench/monitor_overhead.py` alternates epochs with and without a callback in one process.",
        )
        print(f"wrote {RESULTS.relative_to(ROOT)} and {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
