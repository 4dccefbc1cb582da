"""Field report A as reported: a memory network language model with three mistakes.

    python -m examples.a_memory.broken [--quick] [--learning-rate 0.01]

End-to-end memory network (Sukhbaatar et al. 2015) over the MEMORY_SIZE previous words:
memories A and C with learned temporal encodings added by a custom `x + kernel` layer
(normal init, std 0.05), a constant query of 0.1, three hops. The mistakes of the report:
`H` is applied to the relevance vector instead of the query (u' = o + H p), and the output
is `Dense(V, activation="relu")` trained with a probability loss; SGD, lr 0.01, clipnorm 50.
(The report's loss is categorical_crossentropy over one-hot targets; the sparse form used
here is the same loss without a 2,000-wide one-hot copy of every target.)
"""

import keras

from examples import runner
from examples.a_memory import next_word as nw


@keras.saving.register_keras_serializable(package="report_a")
class TemporalEncoding(keras.layers.Layer):
    """The report's layer: a learned table added to the memories."""

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel", shape=tuple(input_shape[1:]), initializer=keras.initializers.RandomNormal(stddev=0.05)
        )

    def call(self, x):
        return x + self.kernel


def main(argv=None) -> dict:
    args = runner.arguments(__file__, __doc__, argv, learning_rate=nw.LEARNING_RATE)
    runner.seed_everything()
    context = keras.Input((nw.MEMORY_SIZE,), dtype="int32", name="context")
    query = keras.Input((nw.WIDTH,), name="query")
    embedding_a = keras.layers.Embedding(nw.VOCABULARY, nw.WIDTH, name="embedding_a")
    memory_a = TemporalEncoding(name="temporal_a")(embedding_a(context))
    embedding_c = keras.layers.Embedding(nw.VOCABULARY, nw.WIDTH, name="embedding_c")
    memory_c = TemporalEncoding(name="temporal_c")(embedding_c(context))
    u = query
    for hop in range(nw.HOPS):
        relevance = keras.layers.Activation("softmax", name=f"relevance_{hop}")(
            keras.layers.Dot(axes=(2, 1))([memory_a, u])
        )
        read = keras.layers.Dot(axes=(1, 1), name=f"read_{hop}")([relevance, memory_c])
        mistake = keras.layers.Dense(nw.WIDTH, name=f"H_{hop}")(relevance)  # H p: the report's bug (H u is right)
        u = keras.layers.Add(name=f"next_query_{hop}")([read, mistake])
    output = keras.layers.Dense(nw.VOCABULARY, activation="relu", name="next_word")(u)
    model = keras.Model([context, query], output)
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=args.learning_rate, clipnorm=50.0),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return nw.diagnose_and_train(args, "broken", model)


if __name__ == "__main__":
    main()
