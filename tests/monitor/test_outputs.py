"""The Monitor's outputs besides its report: the health plot, TensorBoard scalars, and a
BackupAndRestore backup that survives a stop for NaN."""

import keras
import numpy as np
import pytest

from nandoctor.loaders import load
from nandoctor.monitor import Monitor
from tests.conftest import run_cli
from tests.monitor.test_monitor import features, fit, shrinking_model

# Backend-neutral: `make test` runs these again under KERAS_BACKEND=jax.
pytestmark = pytest.mark.every_backend


def diverging_run(tmp_path, **options):
    x = features()
    return fit(shrinking_model(normalise=True), x, np.zeros_like(x), Monitor(verbose=0, **options))


def test_plot_draws_the_norms_with_the_forecast_and_the_first_nan(keras_seed, tmp_path):
    from nandoctor.monitor.plot import layer_norms, read_log

    diverging_run(tmp_path, log_dir=tmp_path)
    records = read_log(tmp_path)
    codes = [f["code"] for r in records for f in r["findings"]]
    assert codes == ["ND701", "ND702"]
    assert "shrinking" in layer_norms(records)
    result = run_cli("plot", tmp_path, "-o", tmp_path / "health.png", expected_exit=0)
    png = (tmp_path / "health.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000 and "wrote" in result.stdout


def test_a_run_broken_at_its_first_step_plots_its_starting_weights_and_the_break(tmp_path):
    from nandoctor.monitor.plot import layer_norms, read_log
    from tests.monitor.divergences import DIVERGENCES

    keras.utils.set_random_seed(0)
    model, x, y, batch_size, _ = DIVERGENCES["zero_rows_under_a_norm"]()
    model.fit(x, y, batch_size=batch_size, shuffle=False, verbose=0, callbacks=[Monitor(log_dir=tmp_path, verbose=0)])
    records = read_log(tmp_path)
    assert [f["step"] for r in records for f in r["findings"] if f["code"] == "ND702"] == [1]
    assert layer_norms(records)["word_emb"] == [(0, pytest.approx(records[0]["variables"][0]["norm"]))]
    run_cli("plot", tmp_path, "-o", tmp_path / "health.png", expected_exit=0)
    assert (tmp_path / "health.png").read_bytes().startswith(b"\x89PNG")


def test_a_new_monitor_starts_a_new_log_and_its_own_later_fits_append(keras_seed, tmp_path):
    from nandoctor.monitor.plot import read_log

    x = features(rows=40)
    model = shrinking_model(normalise=False)
    fit(model, x, np.zeros_like(x), Monitor(log_dir=tmp_path, verbose=0))
    monitor = Monitor(log_dir=tmp_path, verbose=0)
    fit(model, x, np.zeros_like(x), monitor)  # steps 41-80: the first run's lines are gone
    # From the starting weights, the first steps one by one, then every 10 steps.
    assert [r["step"] for r in read_log(tmp_path)] == [40, 41, 42, 50, 60, 70, 80]
    fit(model, x, np.zeros_like(x), monitor)  # a run of its own, appended: it starts at its own weights
    assert [r["step"] for r in read_log(tmp_path)] == [40, 41, 42, 50, 60, 70, 80, 80, 81, 82, 90, 100, 110, 120]


def test_plot_refuses_a_file_that_is_not_a_health_log(tmp_path):
    (tmp_path / "notes.jsonl").write_text("not json\n")
    result = run_cli("plot", tmp_path / "notes.jsonl", expected_exit=2)
    assert "not a nandoctor health log" in result.stderr


def test_tensorboard_scalars_are_written_per_variable(keras_seed, tmp_path):
    import tensorflow as tf

    diverging_run(tmp_path, tensorboard_dir=tmp_path / "tb")
    tags = set()
    for event_file in (tmp_path / "tb").glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            tags.update(value.tag for value in event.summary.value)
    assert {"nandoctor/shrinking/kernel/norm", "nandoctor/shrinking/kernel/nonfinite"} <= tags


def test_a_stop_for_nan_keeps_a_finite_backup_and_restore_checkpoint(keras_seed, tmp_path):
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    x = features()
    model = shrinking_model(normalise=True)
    monitor = Monitor(verbose=0, on_nonfinite="stop", backup=backup)
    model.fit(x, np.zeros_like(x), batch_size=1, epochs=1, verbose=0, callbacks=[backup, monitor])
    saved = tmp_path / "backup" / "latest.weights.h5"
    assert monitor.restored and saved.exists()
    with load(str(saved)) as view:
        assert all(np.isfinite(w.read()).all() for w in view.weights())


def test_without_the_monitor_keras_deletes_the_backup(keras_seed, tmp_path):
    """The control: TerminateOnNaN stops gracefully and Keras removes the backup (#21771)."""
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    x = features()
    shrinking_model(normalise=True).fit(
        x, np.zeros_like(x), batch_size=1, epochs=1, verbose=0, callbacks=[backup, keras.callbacks.TerminateOnNaN()]
    )
    assert not (tmp_path / "backup").exists()
