"""Field report D as reported: zero-padded documents, Embedding -> Flatten -> Dense, no mask.

    python -m examples.d_padding.broken [--quick]

Documents are zero-padded to 1,000 tokens (the report: 1,100), so about 94% of the
positions of a document are padding. A plain `Embedding` turns every padding position into
the same trained vector, and `Flatten` hands all of them to the Dense layer.
"""

import keras

from examples import runner
from examples.d_padding import topics


def main(argv=None) -> dict:
    args = runner.arguments(__file__, __doc__, argv)
    runner.seed_everything()
    model = topics.topic_classifier(keras.layers.Embedding(topics.VOCABULARY, 100, name="embedding"))
    diagnosis = runner.diagnose(args, "broken", model)  # before training: the scan needs no data
    results = runner.save_results(args, "broken", {**diagnosis, **topics.train(model, args.quick)})
    topics.plot_learning_curves(args)
    return results


if __name__ == "__main__":
    main()
