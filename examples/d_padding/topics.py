"""Documents labelled by topic, offline, and the training budget both of report D's models get.

Field report D classified 20 Newsgroups posts. Those need a download; this stands in
for them with real, variable-length English on nine topics that ship with every Python
3.11: the docstrings (at least 15 words) of the modules, classes and functions of
asyncio, distutils, email, http, importlib, lib2to3, logging, unittest and xml: 1,294
documents (82 to 241 per topic) of 15 to 724 words, median 40 (measured on Python 3.11),
zero-padded to 1,000 positions as in the report, so most positions of every document are
padding.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import warnings

import numpy as np

from examples import corpus, runner

LENGTH, VOCABULARY = 1000, 8000  # the report: 1,100 tokens
EPOCHS, QUICK_EPOCHS, BATCH_SIZE = 15, 1, 32
TOPICS = ("asyncio", "distutils", "email", "http", "importlib", "lib2to3", "logging", "unittest", "xml")
MIN_WORDS = 15
_SKIPPED_MODULES = ("__main__", "test", "tests")  # importing unittest.__main__ runs the tests


def _modules(package_name: str):
    package = importlib.import_module(package_name)
    yield package
    for info in pkgutil.walk_packages(package.__path__, package_name + "."):
        if any(part in _SKIPPED_MODULES for part in info.name.split(".")):
            continue
        try:
            yield importlib.import_module(info.name)
        except Exception:  # platform-only modules (Windows event loops, ...)
            continue


def _documented_objects(module):
    yield module
    for value in list(vars(module).values()):
        if getattr(value, "__module__", None) != module.__name__:
            continue  # imported from elsewhere: counted under its own module
        if inspect.isfunction(value):
            yield value
        elif inspect.isclass(value):
            yield value
            yield from (member for member in vars(value).values() if inspect.isfunction(member))


def topic_documents(package_name: str) -> list[list[str]]:
    """The package's docstrings of at least MIN_WORDS words, as word lists, in a fixed order."""
    documents, seen = [], set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # distutils and lib2to3 announce their deprecation
        for module in _modules(package_name):
            for item in _documented_objects(module):
                text = item.__doc__ if inspect.ismodule(item) else inspect.getdoc(item)
                tokens = corpus.words(text or "")
                if len(tokens) >= MIN_WORDS and text not in seen:
                    seen.add(text)
                    documents.append(tokens)
    return documents


def padded_dataset(length: int, vocabulary_size: int, held_out_fraction: float = 0.2, seed: int = 0):
    """((x_train, y_train), (x_test, y_test), vocabulary): ids zero-padded (and cut) to
    `length` at the end, one-hot topics, shuffled once with `seed`, as the report's pipeline."""
    documents, labels = [], []
    for label, topic in enumerate(TOPICS):
        for tokens in topic_documents(topic):
            documents.append(tokens)
            labels.append(label)
    order = np.random.default_rng(seed).permutation(len(documents))
    boundary = int(len(order) * (1 - held_out_fraction))
    train_ids = order[:boundary]
    words = corpus.vocabulary([w for i in train_ids for w in documents[i]], vocabulary_size)
    index = {word: i for i, word in enumerate(words)}
    x = np.zeros((len(documents), length), dtype="int32")  # id 0 is padding
    for row, tokens in enumerate(documents):
        ids = [index.get(word, 1) for word in tokens[:length]]
        x[row, : len(ids)] = ids
    y = np.eye(len(TOPICS), dtype="float32")[labels]
    return (x[train_ids], y[train_ids]), (x[order[boundary:]], y[order[boundary:]]), words


def topic_classifier(embedding):
    """The report's model around a given embedding layer: -> Flatten -> Dense(25, relu) ->
    Dropout -> Dense(topics, softmax), Adam. Broken and fixed differ in the embedding only."""
    import keras

    model = keras.Sequential(
        [
            keras.Input((LENGTH,), dtype="int32", name="tokens"),
            embedding,
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(25, activation="relu", name="hidden"),
            keras.layers.Dropout(0.5, name="dropout"),
            keras.layers.Dense(len(TOPICS), activation="softmax", name="topic"),
        ],
        name="topics",
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def train(model, quick: bool) -> dict:
    """Fit on the training documents, validate on the held-out ones; the curves and how many
    hidden ReLU units ever fire on held-out text (a stuck model's have died)."""
    import keras

    (x_train, y_train), (x_test, y_test), _ = padded_dataset(LENGTH, VOCABULARY)
    history = model.fit(
        x_train,
        y_train,
        validation_data=(x_test, y_test),
        batch_size=BATCH_SIZE,
        epochs=QUICK_EPOCHS if quick else EPOCHS,
        verbose=2,
    )
    hidden = keras.Model(model.inputs, model.get_layer("hidden").output).predict(x_test, verbose=0)
    return {
        "parameters": model.count_params(),
        "documents": {"train": len(x_train), "held_out": len(x_test)},
        "padding_fraction": float((x_train == 0).mean()),
        "majority_class_accuracy": float(y_test.mean(axis=0).max()),
        "val_accuracy": history.history["val_accuracy"],
        "train_accuracy": history.history["accuracy"],
        "live_hidden_units": f"{int((hidden.max(axis=0) > 0).sum())} of {hidden.shape[1]}",
    }


def plot_learning_curves(args) -> None:
    """Held-out accuracy per epoch of every run in the results folder so far."""
    runs = {name: runner.load_results(args.out, name) for name in ("broken", "fixed")}
    curves = {
        f"{name}: {label}": (list(range(1, len(r["val_accuracy"]) + 1)), r["val_accuracy"])
        for (name, r), label in zip(runs.items(), ("Embedding", "MaskedEmbedding"))
        if r
    }
    majority = next(r for r in runs.values() if r)["majority_class_accuracy"]
    runner.plot_curves(
        args.out,
        "learning_curves.png",
        curves,
        xlabel="epoch",
        ylabel="held-out accuracy",
        title="Report D: documents zero-padded to 1,000 tokens, Flatten -> Dense",
        reference=("chance (majority topic)", majority),
    )
