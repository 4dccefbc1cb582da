"""Which process speaks for a training run. Under multi-worker training every worker runs its
own Monitor on the same synchronised weights and loss, so each reaches the same findings at
the same step and takes the same actions on its replica (a stop must happen on every worker,
or the others wait forever in the next all-reduce); only the chief prints the findings and
writes the logs, so they appear once."""

from __future__ import annotations

import keras


def is_chief(model) -> bool:
    backend = keras.backend.backend()
    if backend == "tensorflow":
        strategy = model.distribute_strategy
        try:
            # MultiWorkerMirroredStrategy: the chief (or worker 0); every single-process strategy: True.
            return bool(strategy.extended.should_checkpoint)
        except (AttributeError, NotImplementedError):
            return True
    if backend == "jax":
        import jax

        return jax.process_index() == 0  # several processes after keras.distribution.initialize()
    return True
