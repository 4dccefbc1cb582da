"""The Monitor's statistics as TensorBoard scalars, one series per variable and statistic."""

from __future__ import annotations

from nandoctor.monitor.detector import Check
from nandoctor.monitor.stats import MAX_ABS, NONFINITE, NORM


class TensorBoardScalars:
    @staticmethod
    def require() -> None:
        """tf.summary writes scalars only when the tensorboard package is installed."""
        import importlib.util

        if importlib.util.find_spec("tensorboard") is None:
            raise ValueError("`tensorboard_dir` needs the tensorboard package: pip install tensorboard")

    def __init__(self, directory):
        import tensorflow as tf

        self._tf = tf
        self._writer = tf.summary.create_file_writer(str(directory))

    def write(self, check: Check) -> None:
        with self._writer.as_default(step=check.step):
            for index, variable in enumerate(check.variables):
                for label, column in (("norm", NORM), ("max_abs", MAX_ABS), ("nonfinite", NONFINITE)):
                    self._tf.summary.scalar(f"nandoctor/{variable}/{label}", float(check.stats[index, column]))
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
