import keras
import numpy as np
import pytest

from nandoctor.layers import AuxiliaryLosses, AuxiliaryLossSchedule, CausalSelfAttention

# Backend-neutral: `make test` runs these again under KERAS_BACKEND=jax.
pytestmark = pytest.mark.every_backend

VOCAB, LENGTH, HORIZON, BLOCKS = 7, 5, 2, 2


def numpy_cross_entropy(targets, logits):
    logits = logits - logits.max(-1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    return -np.take_along_axis(log_probs, targets[..., None], -1).mean()


def expected_total(targets, predictions, progress):
    total = 0.0
    for block, offsets in enumerate(predictions, start=1):
        if block < BLOCKS and progress >= block / (2 * BLOCKS):
            continue
        for k, logits in enumerate(offsets):
            weight = 1.0 if k == 0 else 0.5
            total += weight * numpy_cross_entropy(targets[:, k : k + LENGTH], logits)
    return total


@pytest.mark.parametrize("progress", [0.0, 0.2, 0.3, 0.9])
def test_added_loss_follows_the_paper_schedule(progress):
    rng = np.random.default_rng(0)
    targets = rng.integers(0, VOCAB, size=(3, LENGTH + HORIZON - 1)).astype("int32")
    predictions = [
        [rng.normal(size=(3, LENGTH, VOCAB)).astype("float32") for _ in range(HORIZON)] for _ in range(BLOCKS)
    ]
    layer = AuxiliaryLosses(num_blocks=BLOCKS, horizon=HORIZON)
    layer.build(None)
    layer.progress.assign(progress)
    output = layer([targets, predictions])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(output), predictions[-1][0])
    (loss,) = layer.losses
    np.testing.assert_allclose(float(loss), expected_total(targets, predictions, progress), rtol=1e-5)


def character_model():
    window = keras.Input((LENGTH + HORIZON,), dtype="int32")
    x = keras.layers.Embedding(VOCAB, 8)(window[:, :LENGTH])
    predictions = []
    for _ in range(BLOCKS):
        x = CausalSelfAttention(num_heads=2, intermediate_dim=16)(x)
        predictions.append([keras.layers.Dense(VOCAB)(x) for _ in range(HORIZON)])
    logits = AuxiliaryLosses(num_blocks=BLOCKS, horizon=HORIZON, name="aux")([window[:, 1:], predictions])
    model = keras.Model(window, logits)
    model.compile(optimizer="adam")
    return model


class RecordProgress(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seen = []

    def on_train_batch_end(self, batch, logs=None):
        self.seen.append(round(float(self.model.get_layer("aux").progress), 3))


def test_schedule_advances_progress_through_fit_and_training_runs(keras_seed, tmp_path):
    model = character_model()
    windows = np.random.default_rng(1).integers(0, VOCAB, size=(8, LENGTH + HORIZON)).astype("int32")
    record = RecordProgress()
    history = model.fit(windows, epochs=2, batch_size=4, verbose=0, callbacks=[AuxiliaryLossSchedule(), record])
    assert record.seen == [0.0, 0.25, 0.5, 0.75]
    assert all(np.isfinite(history.history["loss"]))
    model.save(tmp_path / "char.keras")
    reloaded = keras.models.load_model(tmp_path / "char.keras")
    assert reloaded.get_layer("aux").get_config() == model.get_layer("aux").get_config()


def test_schedule_needs_an_auxiliary_losses_layer():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="no AuxiliaryLosses layer"):
        model.fit(np.zeros((2, 2)), np.zeros((2, 1)), verbose=0, callbacks=[AuxiliaryLossSchedule()])
