"""Field report C as reported: gensim tables with zero rows, a hand-written cosine, Adam.

    python -m examples.c_cosine.broken [--quick]

Paragraph words -> Embedding (gensim-like table) -> Conv1D(tanh) -> max pool -> tanh ->
Dropout -> Dense = z; the positive topic and ten negatives go through a second gensim-like
table; cosine is written by hand, as the asker first wrote it (no epsilon); the max-margin
loss is the model's output, minimised with Adam. On TensorFlow 2.21 the first batch that
draws a zero entity row makes 0/0 in the cosine, and one step later every weight is NaN.
"""

import keras

from examples import runner
from examples.c_cosine import ranking


def hand_written_cosine(pair):
    a, b = pair
    norm = lambda t: keras.ops.sqrt(keras.ops.sum(t * t, axis=-1))  # noqa: E731
    return keras.ops.sum(a * b, axis=-1) / (norm(a) * norm(b))


def ranking_model(word_table, entity_table):
    width = ranking.WIDTH
    words = keras.Input((ranking.WORDS,), dtype="int32", name="words")
    positive = keras.Input((1,), dtype="int32", name="positive")
    negatives = keras.Input((ranking.NEGATIVES,), dtype="int32", name="negatives")
    embedded = keras.layers.Embedding(len(word_table), width, weights=[word_table], name="word_emb")(words)
    z = ranking.text_tower(embedded)
    entity_emb = keras.layers.Embedding(len(entity_table), width, weights=[entity_table], name="entity_emb")
    z_one, z_many = keras.layers.Reshape((1, width))(z), keras.layers.RepeatVector(ranking.NEGATIVES)(z)
    pos = keras.layers.Lambda(hand_written_cosine, name="cos_pos")([z_one, entity_emb(positive)])
    neg = keras.layers.Lambda(hand_written_cosine, name="cos_neg")([z_many, entity_emb(negatives)])
    model = keras.Model(
        [words, positive, negatives], keras.layers.Lambda(ranking.max_margin, name="max_margin")([pos, neg])
    )
    model.compile(optimizer="adam", loss=ranking.output_is_the_loss)
    return model


def main(argv=None) -> dict:
    args = runner.arguments(__file__, __doc__, argv)
    runner.seed_everything()
    inputs, word_table, entity_table = ranking.dataset()
    model = ranking_model(word_table, entity_table)
    diagnosis = runner.diagnose(args, "broken", model)
    return runner.save_results(
        args,
        "broken",
        {
            **diagnosis,
            **ranking.train(args, "broken", model, inputs),
            "zero_rows": ranking.zero_rows(word_table, entity_table),
        },
    )


if __name__ == "__main__":
    main()
