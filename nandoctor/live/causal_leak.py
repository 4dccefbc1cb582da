from __future__ import annotations

from nandoctor.diagnosis import LiveRule
from nandoctor.report import Confidence, Evidence, Severity


class CausalLeak(LiveRule):
    """## What it does
    Proves, on the live model, whether a next-token model's outputs at positions up to `t`
    depend on the tokens after `t`: it changes only the later tokens and measures the change
    of the earlier outputs.

    ## Why is this bad?
    A position that sees the token it must predict learns to copy it: training loss looks
    excellent and generation fails. The static rule ND501 reads the `use_causal_mask`
    argument from the saved graph; this probe also catches what the graph does not say: an
    attention wrapper that drops the flag, an inverted mask that attends only to the
    future, custom attention code.

    ## Example
    ```python
    import keras
    import nandoctor

    tokens = keras.Input((16,), dtype="int32")
    x = keras.layers.Embedding(100, 32)(tokens)
    x = keras.layers.MultiHeadAttention(4, 8)(x, x)  # no use_causal_mask
    model = keras.Model(tokens, keras.layers.Dense(100)(x))
    nandoctor.check(model)  # ND502: outputs at position 0 change when later tokens do
    ```

    ## Use instead
    ```python
    import keras
    import nandoctor

    tokens = keras.Input((16,), dtype="int32")
    x = keras.layers.Embedding(100, 32, mask_zero=True)(tokens)
    x = nandoctor.layers.CausalSelfAttention(num_heads=4, intermediate_dim=128)(x)
    model = keras.Model(tokens, keras.layers.Dense(100)(x))
    ```
    """

    code = "ND502"
    evidence = (
        "a live model that declares it is causal (a causal mask, layer or task class, a triangular mask "
        "in its graph): the causal probe perturbs future tokens. A model that declares nothing is not "
        "judged."
    )
    name = "causal-leak"
    severity = Severity.ERROR
    evidence_kinds = (Evidence.MEASURED,)
    confidence = Confidence.HIGH
    fix = "Mask attention causally (use_causal_mask=True), or build the decoder from nandoctor.layers.CausalSelfAttention."
