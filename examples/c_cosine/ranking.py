"""Report C's task, offline: rank the reference-manual topic a paragraph comes from.

A paragraph's first words are the text; the 79 topics of `pydoc_data.topics` ("assert",
"class", "augassign", ...) are the entities. The report initialised both embedding tables
from gensim vectors, which leave words outside the vectors' vocabulary as all-zero rows;
here random vectors stand in for gensim's and the same rule decides which rows are zero:
a word seen fewer than MIN_COUNT times (gensim's `min_count`), a topic whose name is not a
known word (34 of the 79: "atom-identifiers", "augassign", ...).
"""

from __future__ import annotations

from collections import Counter
from pydoc_data.topics import topics

import numpy as np

from examples import corpus, runner

WORDS, NEGATIVES, WIDTH, MIN_COUNT, VOCABULARY = 20, 10, 32, 5, 4000
EPOCHS = 30  # 38 steps each


def paragraphs_by_topic() -> list[tuple[str, list[str]]]:
    """(topic, words) for every prose paragraph of at least WORDS words, in a fixed order."""
    pairs = []
    for topic in sorted(topics):
        for block in topics[topic].split("\n\n"):
            if block.startswith((" ", "\t")):
                continue  # grammar and code samples; headings are too short to count
            tokens = corpus.words(" ".join(block.split()))
            if len(tokens) >= WORDS:
                pairs.append((topic, tokens[:WORDS]))
    return pairs


def gensim_like_tables(word_list: list[str], counts: Counter, entity_names: list[str], seed: int = 0):
    """Word and entity tables as gensim leaves them: a vector per known word, zero rows
    for the rest; an entity's vector is its name's word vector, zero when unknown."""
    rng = np.random.default_rng(seed)
    word_table = rng.normal(scale=0.3, size=(len(word_list), WIDTH)).astype("float32")
    known = np.array([counts[word] >= MIN_COUNT for word in word_list])
    known[:2] = False  # padding and unknown words have no vector either
    word_table[~known] = 0.0
    index = {word: i for i, word in enumerate(word_list)}
    entity_table = np.stack(
        [word_table[index[name]] if name in index else np.zeros(WIDTH, "float32") for name in entity_names]
    )
    return word_table, entity_table


def dataset(seed: int = 0):
    """Inputs [words, positive topic, negative topics], the two tables, and the topic names."""
    pairs = paragraphs_by_topic()
    entity_names = sorted(topics)
    # Counted once over the whole text, as gensim counts its training corpus.
    tokens = corpus.words(corpus.english_text())
    counts = Counter(tokens)
    word_list = corpus.vocabulary(tokens, VOCABULARY)
    index = {word: i for i, word in enumerate(word_list)}
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(pairs))
    words = np.array([[index.get(w, 1) for w in pairs[i][1]] for i in order], dtype="int32")
    positive = np.array([[entity_names.index(pairs[i][0])] for i in order], dtype="int32")
    # Negatives drawn from the other topics, as the report's WARP-style sampling does.
    negative = (positive + rng.integers(1, len(entity_names), size=(len(order), NEGATIVES))) % len(entity_names)
    word_table, entity_table = gensim_like_tables(word_list, counts, entity_names, seed)
    return [words, positive, negative.astype("int32")], word_table, entity_table


def zero_rows(word_table, entity_table) -> dict:
    return {"word_emb": int((~word_table.any(axis=1)).sum()), "entity_emb": int((~entity_table.any(axis=1)).sum())}


def text_tower(embedded):
    """The report's text encoder, the same in both models: Conv1D(tanh) -> max pool -> tanh
    -> Dropout -> Dense = z, a vector of WIDTH to compare with the entities'."""
    import keras

    x = keras.layers.Conv1D(256, 5, activation="tanh", name="conv")(embedded)
    x = keras.layers.Activation("tanh", name="tanh")(keras.layers.GlobalMaxPooling1D(name="pool")(x))
    return keras.layers.Dense(WIDTH, name="z")(keras.layers.Dropout(0.2, name="dropout")(x))


def max_margin(scores):
    """The report's loss, as the model's output: sum over negatives of max(0, 1 + neg - pos)."""
    import keras

    positive, negatives = scores
    return keras.ops.sum(keras.ops.relu(1.0 + negatives - positive), axis=-1, keepdims=True)


def output_is_the_loss(_, margin):
    return margin


def train(args, name: str, model, inputs, epochs: int = EPOCHS, quick_epochs: int = 1) -> dict:
    """Fit the max-margin output under the Monitor (a check every step, a health log and
    its plot, a stop at the first non-finite weight); then the held-out share of paragraphs whose topic outranks all ten negatives."""
    import keras

    import nandoctor
    from nandoctor.monitor.plot import plot_health, read_log

    boundary = int(0.8 * len(inputs[0]))
    train_x, test_x = [x[:boundary] for x in inputs], [x[boundary:] for x in inputs]
    no_targets = np.zeros((boundary, 1), "float32")  # the output is the loss itself
    sample = ([x[:16] for x in train_x], no_targets[:16])  # replayed layer by layer if a value goes non-finite
    # Stop at the first non-finite weight: the epochs after it would train NaN.
    monitor = nandoctor.Monitor(
        every_n_steps=1, on_nonfinite="stop", log_dir=args.out / f"{name}_health", sample=sample, verbose=0
    )
    history = model.fit(
        train_x,
        no_targets,
        batch_size=16,
        epochs=quick_epochs if args.quick else epochs,
        verbose=2,
        callbacks=[monitor],
    )
    log = read_log(args.out / f"{name}_health" / "nandoctor-health.jsonl")
    plot_health(log, args.out / f"{name}_health.png", title=f"Report C, {name}: weight norms per layer")
    command = ">>> model.fit(..., callbacks=[monitor]); monitor.report  # nandoctor.Monitor(on_nonfinite='stop')"
    monitor_output = runner.show(command, monitor.report)
    scorer = keras.Model(model.inputs, [model.get_layer("cos_pos").output, model.get_layer("cos_neg").output])
    positive, negatives = scorer.predict(test_x, verbose=0)
    return {
        "monitor": [
            {
                "code": f.code,
                "layer": f.layer,
                "step": f.details.get("step"),
                "forecast_step": f.details.get("forecast_step"),
                "message": f.message,
            }
            for f in monitor.report.findings
        ],
        "monitor_serious": runner.serious_codes(monitor.report),
        "monitor_output": monitor_output,
        "loss": history.history["loss"],
        "held_out_top1": float((positive.reshape(len(positive), 1) > negatives).all(axis=1).mean()),
        "weights_finite_at_end": bool(all(np.isfinite(w).all() for w in model.get_weights())),
        "steps": log[-1]["step"],
    }
