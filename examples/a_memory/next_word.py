"""Report A's task: predict the next word of the reference manual's prose from the
MEMORY_SIZE words before it, and the budget both memory networks get (SGD with clipnorm
50 at the report's lr 0.01 unless `--learning-rate` says otherwise; the same epochs)."""

from __future__ import annotations

import math

import numpy as np

from examples import corpus, runner

VOCABULARY, WIDTH, MEMORY_SIZE, HOPS = 2000, 64, 10, 3
EPOCHS, QUICK_EPOCHS, BATCH_SIZE = 10, 1, 32
QUERY_VALUE = 0.1  # the report's constant query vector
LEARNING_RATE = 0.01  # the report's


def run_name(script: str, learning_rate: float) -> str:
    """`fixed`, or `fixed_lr0.5` for a run at another learning rate than the report's."""
    return script if learning_rate == LEARNING_RATE else f"{script}_lr{learning_rate:g}"


def contexts(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every window of MEMORY_SIZE ids, and the id that follows it."""
    windows = np.lib.stride_tricks.sliding_window_view(ids[:-1], MEMORY_SIZE)
    return np.ascontiguousarray(windows), ids[MEMORY_SIZE:]


def dataset(quick: bool = False):
    """([context, query], next word) for training and for the held-out last 10% of the text."""
    tokens = corpus.words(corpus.english_text())
    train_tokens, held_out_tokens = corpus.held_out_split(tokens)
    index = {word: i for i, word in enumerate(corpus.vocabulary(train_tokens, VOCABULARY))}
    encode = lambda part: np.array([index.get(w, 1) for w in part], dtype="int32")  # noqa: E731
    (x, y), (x_test, y_test) = contexts(encode(train_tokens)), contexts(encode(held_out_tokens))
    if quick:
        x, y = x[:2048], y[:2048]
    query = lambda n: np.full((n, WIDTH), QUERY_VALUE, "float32")  # noqa: E731
    return ([x, query(len(x))], y), ([x_test, query(len(x_test))], y_test)


def train(model, quick: bool) -> dict:
    (x, y), (x_test, y_test) = dataset(quick)
    history = model.fit(
        x,
        y,
        validation_data=(x_test, y_test),
        batch_size=BATCH_SIZE,
        epochs=QUICK_EPOCHS if quick else EPOCHS,
        verbose=2,
    )
    return {
        "parameters": model.count_params(),
        "val_accuracy": history.history["val_accuracy"],
        "train_accuracy": history.history["accuracy"],
        "val_perplexity": [math.exp(min(loss, 50.0)) for loss in history.history["val_loss"]],
        # The share of the most frequent word in the held-out text: what "always say 'the'" scores.
        "most_frequent_word_accuracy": float(np.bincount(y_test).max() / len(y_test)),
    }


def diagnose_and_train(args, script: str, model) -> dict:
    """nandoctor's scan and check of the compiled model, then training; the results are
    saved as `script`, or `script_lr0.5` at another learning rate than the report's."""

    run = run_name(script, args.learning_rate)
    diagnosis = runner.diagnose(args, run, model)
    return runner.save_results(
        args, run, {**diagnosis, "learning_rate": args.learning_rate, **train(model, args.quick)}
    )
