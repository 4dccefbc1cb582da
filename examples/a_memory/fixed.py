"""Field report A fixed: `TemporalEncoding`, `MemoryHop` and a softmax output, same budget.

    python -m examples.a_memory.fixed [--quick] [--learning-rate 0.01]

`nandoctor.layers.TemporalEncoding` starts its table at the scale of the token embeddings;
`nandoctor.layers.MemoryHop` updates the query as the paper does, u' = H u + o; the output
is a softmax, which the cross-entropy expects. Same data, SGD (clipnorm 50, the report's
lr 0.01 unless `--learning-rate` is given) and epochs as the broken model.
"""

import keras

from examples import runner
from examples.a_memory import next_word as nw
from nandoctor.layers import MemoryHop, TemporalEncoding


def main(argv=None) -> dict:
    args = runner.arguments(__file__, __doc__, argv, learning_rate=nw.LEARNING_RATE)
    runner.seed_everything()
    context = keras.Input((nw.MEMORY_SIZE,), dtype="int32", name="context")
    query = keras.Input((nw.WIDTH,), name="query")
    embedding_a = keras.layers.Embedding(nw.VOCABULARY, nw.WIDTH, name="embedding_a")
    memory_a = TemporalEncoding(nw.MEMORY_SIZE, name="temporal_a")(embedding_a(context))
    embedding_c = keras.layers.Embedding(nw.VOCABULARY, nw.WIDTH, name="embedding_c")
    memory_c = TemporalEncoding(nw.MEMORY_SIZE, name="temporal_c")(embedding_c(context))
    u = query
    for hop in range(nw.HOPS):
        u = MemoryHop(name=f"hop_{hop}")([u, memory_a, memory_c])
    output = keras.layers.Dense(nw.VOCABULARY, activation="softmax", name="next_word")(u)
    model = keras.Model([context, query], output)
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=args.learning_rate, clipnorm=50.0),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return nw.diagnose_and_train(args, "fixed", model)


if __name__ == "__main__":
    main()
