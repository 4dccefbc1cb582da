"""Field report C fixed: the same model, tables and Adam, with the cosine that cannot fail.

    python -m examples.c_cosine.fixed [--quick]

`nandoctor.layers.SafeCosineSimilarity` keeps its epsilon inside each square root, so its
value and gradient are finite for every input, zero vectors included. The words go through
`MaskedEmbedding` (padding exactly zero before the convolution and the max pool), and the
rows gensim left at zero get small random vectors, the rest of ND101's prescription.
"""

import keras
import numpy as np

from examples import runner
from examples.c_cosine import ranking
from nandoctor.layers import MaskedEmbedding, SafeCosineSimilarity


def fill_zero_rows(table, rng, scale=0.01):
    """Small random vectors for the rows gensim left at zero (row 0, the padding, stays zero)."""
    missing = ~table.any(axis=1)
    missing[0] = False
    return np.where(missing[:, None], rng.normal(scale=scale, size=table.shape), table).astype("float32")


def ranking_model(word_table, entity_table):
    width = ranking.WIDTH
    words = keras.Input((ranking.WORDS,), dtype="int32", name="words")
    positive = keras.Input((1,), dtype="int32", name="positive")
    negatives = keras.Input((ranking.NEGATIVES,), dtype="int32", name="negatives")
    embedded = MaskedEmbedding(len(word_table), width, weights=[word_table], name="word_emb")(words)
    z = ranking.text_tower(embedded)
    entity_emb = keras.layers.Embedding(len(entity_table), width, weights=[entity_table], name="entity_emb")
    z_one = keras.layers.Reshape((1, width))(z)
    pos = SafeCosineSimilarity(name="cos_pos")([z_one, entity_emb(positive)])
    neg = SafeCosineSimilarity(name="cos_neg")([z_one, entity_emb(negatives)])
    model = keras.Model(
        [words, positive, negatives], keras.layers.Lambda(ranking.max_margin, name="max_margin")([pos, neg])
    )
    model.compile(optimizer="adam", loss=ranking.output_is_the_loss)
    return model


def main(argv=None) -> dict:
    args = runner.arguments(__file__, __doc__, argv)
    runner.seed_everything()
    inputs, word_table, entity_table = ranking.dataset()
    rng = np.random.default_rng(1)
    model = ranking_model(fill_zero_rows(word_table, rng), fill_zero_rows(entity_table, rng))
    diagnosis = runner.diagnose(args, "fixed", model)
    return runner.save_results(
        args,
        "fixed",
        {
            **diagnosis,
            **ranking.train(args, "fixed", model, inputs),
            "zero_rows": ranking.zero_rows(word_table, entity_table),
        },
    )


if __name__ == "__main__":
    main()
