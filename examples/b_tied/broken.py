"""Field report B as reported: an output layer that holds a reference to the embedding layer.

    python -m examples.b_tied.broken [--quick]

The Stack Overflow answer ties the softmax to the input embedding with a custom layer,
`TiedEmbeddingsTransposed(tied_to=embedding_layer)`, computing `x @ transpose(E)` and an
activation. It trains. Its config cannot hold a layer, so the saved model does not know
what it was tied to, and loading it back fails.
"""

import keras

from examples import runner
from examples.b_tied import language_model as lm


@keras.saving.register_keras_serializable(package="report_b")
class TiedEmbeddingsTransposed(keras.layers.Layer):
    """The answer's layer: the reference to the embedding layer is the tie."""

    def __init__(self, tied_to=None, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.tied_to = tied_to
        self.activation = keras.activations.get(activation)

    def call(self, x):
        return self.activation(keras.ops.matmul(x, keras.ops.transpose(self.tied_to.embeddings)))

    def get_config(self):  # a layer is not JSON: the reference is left out, as in the answer
        return {**super().get_config(), "activation": keras.activations.serialize(self.activation)}


def main(argv=None) -> dict:
    args = runner.arguments(__file__, __doc__, argv)
    runner.seed_everything()
    tokens = keras.Input((None,), dtype="int32", name="tokens")
    embedding = keras.layers.Embedding(lm.VOCABULARY, lm.HIDDEN, name="word_emb")
    hidden = keras.layers.GRU(lm.HIDDEN, return_sequences=True, name="gru")(embedding(tokens))
    output = TiedEmbeddingsTransposed(tied_to=embedding, activation="softmax", name="tied_output")(hidden)
    model = keras.Model(tokens, output)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")

    results = lm.train(model, args.quick)
    diagnosis = runner.diagnose(args, "broken", model)  # after training: the report saved a trained model
    try:
        keras.models.load_model(args.out / "broken.keras")
        reloaded = "loaded"
    except Exception as error:  # what the user meets: the tie is gone
        reloaded = f"{type(error).__name__}: {' '.join(str(error).split())[:300]}"
    print(f"\n$ keras.models.load_model('broken.keras')\n{reloaded}")
    return runner.save_results(args, "broken", {**diagnosis, **results, "reload": reloaded})


if __name__ == "__main__":
    main()
