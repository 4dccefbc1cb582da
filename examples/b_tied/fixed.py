"""Field report B fixed: `nandoctor.layers.TiedEmbedding`, against the untied model.

    python -m examples.b_tied.fixed [--quick]

One `(vocabulary, hidden)` matrix embeds the words and, called with `reverse=True`,
projects the GRU's states back to logits. The file stores it once; after reloading, the
model predicts exactly as before and stays tied through more training. The untied model
(its own `Dense` softmax) gets the same data and budget, for the parameter count and the
held-out perplexity.
"""

import keras
import numpy as np

from examples import runner
from examples.b_tied import language_model as lm
from nandoctor.layers import TiedEmbedding


def tied_model():
    tokens = keras.Input((None,), dtype="int32", name="tokens")
    embedding = TiedEmbedding(lm.VOCABULARY, lm.HIDDEN, mask_zero=True, name="word_emb")
    hidden = keras.layers.GRU(lm.HIDDEN, return_sequences=True, name="gru")(embedding(tokens))
    model = keras.Model(tokens, embedding(hidden, reverse=True))
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def untied_model():
    tokens = keras.Input((None,), dtype="int32", name="tokens")
    embedded = keras.layers.Embedding(lm.VOCABULARY, lm.HIDDEN, mask_zero=True, name="word_emb")(tokens)
    hidden = keras.layers.GRU(lm.HIDDEN, return_sequences=True, name="gru")(embedded)
    model = keras.Model(tokens, keras.layers.Dense(lm.VOCABULARY, name="next_word")(hidden))
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def still_tied(model, x) -> float:
    """max |logits - gru states @ transpose(embedding)|: 0 when the output uses the input table."""
    states = keras.Model(model.inputs, model.get_layer("gru").output).predict(x, verbose=0)
    table = model.get_layer("word_emb").embeddings.numpy()
    return float(np.abs(model.predict(x, verbose=0) - states @ table.T).max())


def main(argv=None) -> dict:
    args = runner.arguments(__file__, __doc__, argv)
    (x, y), (x_test, _), _ = lm.dataset(args.quick)

    runner.seed_everything()
    tied = tied_model()
    tied_results = lm.train(tied, args.quick)
    diagnosis = runner.diagnose(args, "fixed", tied)
    reloaded = keras.models.load_model(args.out / "fixed.keras")
    reload_difference = float(np.abs(reloaded.predict(x_test, verbose=0) - tied.predict(x_test, verbose=0)).max())
    reloaded.fit(x, y, batch_size=lm.BATCH_SIZE, epochs=1, verbose=0)  # more training after the reload
    print(
        f"\nreloaded: max |prediction difference| {reload_difference}; after one more epoch, "
        f"max |logits - states @ E.T| {still_tied(reloaded, x_test[:8]):.3g}"
    )

    runner.seed_everything()
    untied = untied_model()
    untied_results = lm.train(untied, args.quick)
    untied_diagnosis = runner.diagnose(args, "untied", untied, live=False)
    return runner.save_results(
        args,
        "fixed",
        {
            **diagnosis,
            "tied": tied_results,
            "untied": untied_results,
            "untied_scan": untied_diagnosis["scan"],
            "reload_max_difference": reload_difference,
            "tie_error_after_more_training": still_tied(reloaded, x_test[:8]),
            "matrices_in_reloaded_embedding": len(reloaded.get_layer("word_emb").weights),
        },
    )


if __name__ == "__main__":
    main()
