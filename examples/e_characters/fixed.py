"""Field report E, built right: a 4-block character transformer from `nandoctor.layers`.

    python -m examples.e_characters.fixed [--quick]

Every block adds its own learned positions (`PositionEmbedding`) and attends causally
(`CausalSelfAttention`: no position sees a later one). `AuxiliaryLosses` adds the paper's
three auxiliary losses: every position predicts, every block predicts (block l of n
stops after l/2n of training), and each position also predicts the character after next
(weight 0.5). The same model is trained again without them (the final block's
next-character loss only), on the same windows and budget.
"""

import keras

from examples import runner
from examples.e_characters import characters as ch
from nandoctor.layers import AuxiliaryLosses, CausalSelfAttention, PositionEmbedding


def character_model(auxiliary: bool):
    window = keras.Input((ch.LENGTH + ch.HORIZON,), dtype="int32", name="window")
    x = keras.layers.Embedding(ch.VOCABULARY, ch.WIDTH, mask_zero=True, name="char_emb")(window[:, : ch.LENGTH])
    predictions = []
    for block in range(ch.BLOCKS):
        x = PositionEmbedding(ch.LENGTH, name=f"positions_{block}")(x)
        x = CausalSelfAttention(ch.HEADS, 4 * ch.WIDTH, name=f"block_{block}")(x)
        normed = keras.layers.LayerNormalization(name=f"norm_{block}")(x)
        predictions.append(
            [keras.layers.Dense(ch.VOCABULARY, name=f"predict_{block}_{k + 1}")(normed) for k in range(ch.HORIZON)]
        )
    if auxiliary:
        logits = AuxiliaryLosses(num_blocks=ch.BLOCKS, horizon=ch.HORIZON, name="losses")([window[:, 1:], predictions])
    else:  # the final block's next-character prediction alone
        logits = AuxiliaryLosses(num_blocks=1, horizon=1, name="losses")(
            [window[:, 1 : ch.LENGTH + 1], [predictions[-1][:1]]]
        )
    model = keras.Model(window, logits)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))  # every loss is added by AuxiliaryLosses
    return model


def main(argv=None) -> dict:
    args = runner.arguments(__file__, __doc__, argv)
    runner.seed_everything()
    model = character_model(auxiliary=True)
    diagnosis = runner.diagnose(args, "fixed", model)
    with_auxiliary = ch.train(model, args.quick)
    runner.seed_everything()
    without_auxiliary = ch.train(character_model(auxiliary=False), args.quick)
    return runner.save_results(
        args,
        "fixed",
        {**diagnosis, "with_auxiliary_losses": with_auxiliary, "without_auxiliary_losses": without_auxiliary},
    )


if __name__ == "__main__":
    main()
