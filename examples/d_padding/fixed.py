"""Field report D fixed: the same model and budget, with `nandoctor.layers.MaskedEmbedding`.

    python -m examples.d_padding.fixed [--quick]

`MaskedEmbedding` outputs exactly zero at every padding position and its padding row takes
no gradient, so the padding adds nothing to the Dense layer's input even though `Flatten`
drops the mask (the report multiplied the embeddings by a `token > 0` mask to the same end).
"""

from examples import runner
from examples.d_padding import topics
from nandoctor.layers import MaskedEmbedding


def main(argv=None) -> dict:
    args = runner.arguments(__file__, __doc__, argv)
    runner.seed_everything()
    model = topics.topic_classifier(MaskedEmbedding(topics.VOCABULARY, 100, name="embedding"))
    diagnosis = runner.diagnose(args, "fixed", model)  # before training: the scan needs no data
    results = runner.save_results(args, "fixed", {**diagnosis, **topics.train(model, args.quick)})
    topics.plot_learning_curves(args)
    return results


if __name__ == "__main__":
    main()
