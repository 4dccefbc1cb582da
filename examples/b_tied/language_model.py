"""Report B's task: a word-level language model on the reference manual's prose, and the
training budget every variant gets: the same windows and optimiser, and the same stopping
rule (until the held-out perplexity has not improved for PATIENCE epochs, at most
MAX_EPOCHS), so each model is compared at its best rather than at an arbitrary epoch."""

from __future__ import annotations

import math

import numpy as np

from examples import corpus

VOCABULARY, HIDDEN, WINDOW, TRAINING_STRIDE = 2000, 128, 32, 8
MAX_EPOCHS, PATIENCE, QUICK_EPOCHS, BATCH_SIZE = 40, 2, 1, 32


def windows(ids: np.ndarray, length: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows of `length` ids, one every `stride` ids, and the same windows shifted by one."""
    starts = np.arange(0, len(ids) - length, stride)
    return np.stack([ids[s : s + length] for s in starts]), np.stack([ids[s + 1 : s + length + 1] for s in starts])


def dataset(quick: bool = False):
    """((x, y) for training, (x, y) held out, vocabulary). The held-out text is the last
    10% of the manual, never seen in training; words outside the vocabulary are <unk>."""
    tokens = corpus.words(corpus.english_text())
    train_tokens, held_out_tokens = corpus.held_out_split(tokens)
    words = corpus.vocabulary(train_tokens, VOCABULARY)
    index = {word: i for i, word in enumerate(words)}
    encode = lambda part: np.array([index.get(w, 1) for w in part], dtype="int32")  # noqa: E731
    # Training windows overlap (more steps from a small text); held-out ones do not.
    train = windows(encode(train_tokens), WINDOW, TRAINING_STRIDE)
    held_out = windows(encode(held_out_tokens), WINDOW, WINDOW)
    if quick:
        train = (train[0][:256], train[1][:256])
    return train, held_out, words


def train(model, quick: bool) -> dict:
    """Fit until the held-out loss stops improving (keeping the best weights), then the
    held-out perplexity, exp(mean cross-entropy per word), per epoch and at the best."""
    import keras

    (x, y), (x_test, y_test), _ = dataset(quick)
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=PATIENCE, restore_best_weights=True)
    history = model.fit(
        x,
        y,
        validation_data=(x_test, y_test),
        batch_size=BATCH_SIZE,
        epochs=QUICK_EPOCHS if quick else MAX_EPOCHS,
        callbacks=[stop],
        verbose=2,
    )
    val_perplexity = [math.exp(loss) for loss in history.history["val_loss"]]
    return {
        "parameters": model.count_params(),
        "val_perplexity": val_perplexity,
        "train_perplexity": [math.exp(loss) for loss in history.history["loss"]],
        "best_val_perplexity": min(val_perplexity),
        "best_epoch": val_perplexity.index(min(val_perplexity)) + 1,
    }
