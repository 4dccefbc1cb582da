from __future__ import annotations

from nandoctor.diagnosis import LiveRule
from nandoctor.report import Confidence, Evidence, Severity


class UnguardedLog(LiveRule):
    """## What it does
    Finds logarithms in hand-written code whose argument can be zero.

    ## Why is this bad?
    `log(softmax(x))` is -inf as soon as one probability underflows to 0 (a logit 100
    below the largest is enough in float32), and `log(p)` of a ReLU or a count is -inf at
    0. The loss turns infinite, then NaN through the gradients; a cross-entropy written by
    hand is the usual place.

    ## Example
    ```python
    import keras
    import nandoctor

    logits = keras.Input((10,))
    log_probabilities = keras.layers.Lambda(lambda x: keras.ops.log(keras.ops.softmax(x)))(logits)
    model = keras.Model(logits, log_probabilities)
    nandoctor.check(model)  # ND203: the log takes a softmax, which can be 0
    ```

    ## Use instead
    ```python
    import keras

    logits = keras.Input((10,))
    model = keras.Model(logits, keras.layers.Lambda(lambda x: keras.ops.log_softmax(x))(logits))
    ```
    """

    code = "ND203"
    evidence = (
        "a live model, as ND201; the compiled loss is traced too. The static scan reports unseen code as "
        "ND901, at info."
    )
    name = "unguarded-log"
    severity = Severity.ERROR
    evidence_kinds = (Evidence.CERTAIN, Evidence.MEASURED)
    # A graph check judges structure; the NaN probe's measurement raises it to high.
    confidence = Confidence.MEDIUM
    fix = "Work in log space (keras.ops.log_softmax, or a loss with from_logits=True), or take log(x + eps)."
