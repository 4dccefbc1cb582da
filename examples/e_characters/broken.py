"""Field report E with the causal mask dropped: the same 4-block model, blocks hand-written.

    python -m examples.e_characters.broken [--quick]

Each block is the usual pre-norm transformer block built from Keras layers, but its
`MultiHeadAttention` is called without `use_causal_mask=True`: every position attends to
the whole window, the characters it must predict included. It trains to a loss no
character model can honestly reach, and the held-out figure computed the same way is
just as meaningless: at generation time the future is not there to copy.
"""

import keras

from examples import runner
from examples.e_characters import characters as ch
from nandoctor.layers import AuxiliaryLosses, PositionEmbedding


def transformer_block(x, block: int):
    normed = keras.layers.LayerNormalization(name=f"attention_norm_{block}")(x)
    attended = keras.layers.MultiHeadAttention(ch.HEADS, ch.WIDTH // ch.HEADS, name=f"attention_{block}")(
        normed, normed
    )
    x = keras.layers.Add(name=f"attention_residual_{block}")([x, attended])
    normed = keras.layers.LayerNormalization(name=f"mlp_norm_{block}")(x)
    hidden = keras.layers.Dense(4 * ch.WIDTH, activation="gelu", name=f"mlp_in_{block}")(normed)
    return keras.layers.Add(name=f"mlp_residual_{block}")(
        [x, keras.layers.Dense(ch.WIDTH, name=f"mlp_out_{block}")(hidden)]
    )


def main(argv=None) -> dict:
    args = runner.arguments(__file__, __doc__, argv)
    runner.seed_everything()
    window = keras.Input((ch.LENGTH + ch.HORIZON,), dtype="int32", name="window")
    x = keras.layers.Embedding(ch.VOCABULARY, ch.WIDTH, mask_zero=True, name="char_emb")(window[:, : ch.LENGTH])
    predictions = []
    for block in range(ch.BLOCKS):
        x = transformer_block(PositionEmbedding(ch.LENGTH, name=f"positions_{block}")(x), block)
        normed = keras.layers.LayerNormalization(name=f"norm_{block}")(x)
        predictions.append(
            [keras.layers.Dense(ch.VOCABULARY, name=f"predict_{block}_{k + 1}")(normed) for k in range(ch.HORIZON)]
        )
    logits = AuxiliaryLosses(num_blocks=ch.BLOCKS, horizon=ch.HORIZON, name="losses")([window[:, 1:], predictions])
    model = keras.Model(window, logits)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))

    diagnosis = runner.diagnose(args, "broken", model)
    return runner.save_results(args, "broken", {**diagnosis, **ch.train(model, args.quick)})


if __name__ == "__main__":
    main()
