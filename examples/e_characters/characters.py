"""Report E's task: next-character prediction on the reference manual's prose, reduced to
27 symbols as text8 is (a-z and space; digits spelled out), and the budget every variant
gets: the same windows, Adam, epochs, and the auxiliary-loss schedule."""

from __future__ import annotations

import math
import re

import numpy as np

from examples import corpus

LENGTH, HORIZON, WIDTH, BLOCKS, HEADS = 64, 2, 64, 4, 4
VOCABULARY = 28  # 0 unused (padding), 1 space, 2-27 a-z
EPOCHS, QUICK_EPOCHS, BATCH_SIZE = 10, 1, 32
_DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def text8_like(text: str) -> str:
    """Lower case, digits spelled out, anything else a space, spaces collapsed."""
    text = re.sub(r"[0-9]", lambda m: f" {_DIGITS[int(m.group())]} ", text.lower())
    return " ".join(re.sub(r"[^a-z]+", " ", text).split())


def encode(text: str) -> np.ndarray:
    return np.array([1 if c == " " else ord(c) - ord("a") + 2 for c in text], dtype="int32")


def dataset(quick: bool = False):
    """Windows of LENGTH + HORIZON characters: training (overlapping by half) and held out
    (the last 10% of the text, non-overlapping)."""
    ids = encode(text8_like(corpus.english_text()))
    train_ids, held_out_ids = corpus.held_out_split(ids)
    size = LENGTH + HORIZON
    starts = np.arange(0, len(train_ids) - size, LENGTH // 2)
    train = np.stack([train_ids[s : s + size] for s in starts])
    held_out = np.stack([held_out_ids[s : s + size] for s in range(0, len(held_out_ids) - size, LENGTH)])
    return (train[:256] if quick else train), held_out


def bits_per_character(model, windows: np.ndarray) -> float:
    """Mean cross-entropy of the next character over every position, in bits."""
    logits = model.predict(windows, batch_size=BATCH_SIZE, verbose=0).astype("float64")
    logits -= logits.max(axis=-1, keepdims=True)
    log_probabilities = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    targets = windows[:, 1 : LENGTH + 1]
    picked = np.take_along_axis(log_probabilities, targets[..., None], axis=-1)
    return float(-picked.mean() / math.log(2))


def train(model, quick: bool) -> dict:
    """Adam (lr 1e-3) on the losses the model adds itself, the schedule advancing; then bits
    per character on the training windows and on the held-out text."""
    from nandoctor.layers import AuxiliaryLossSchedule

    train_windows, held_out = dataset(quick)
    history = model.fit(
        train_windows,
        batch_size=BATCH_SIZE,
        epochs=QUICK_EPOCHS if quick else EPOCHS,
        callbacks=[AuxiliaryLossSchedule()],
        verbose=2,
    )
    return {
        "parameters": model.count_params(),
        "windows": {"train": len(train_windows), "held_out": len(held_out)},
        "loss": history.history["loss"],
        "train_bits_per_character": bits_per_character(model, train_windows[:512]),
        "held_out_bits_per_character": bits_per_character(model, held_out),
    }
