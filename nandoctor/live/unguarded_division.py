from __future__ import annotations

from nandoctor.diagnosis import LiveRule
from nandoctor.report import Confidence, Evidence, Severity


class UnguardedDivision(LiveRule):
    """## What it does
    Finds divisions in hand-written code whose denominator can be zero and is not guarded.

    ## Why is this bad?
    `x / norm(x)` and `sum(a * b) / (norm(a) * norm(b))` are finite on typical data and
    NaN (0/0) on the one input whose vector is zero: an all-zero embedding row (gensim
    leaves the rows of unknown words at zero), an all-padding sequence, a ReLU layer that
    died. One NaN in a forward pass reaches the loss and, through the gradients, every
    weight (field report C). A negative power, `x ** -1`, is a division too.

    ## Example
    ```python
    import keras
    import nandoctor

    table = keras.ops.convert_to_numpy(keras.random.normal((100, 16)))
    table[10:20] = 0.0  # words missing from the pretrained vectors
    norm = lambda t: keras.ops.sqrt(keras.ops.sum(t * t, axis=-1))
    query, candidate = keras.Input((16,)), keras.Input((1,), dtype="int32")
    vector = keras.layers.Flatten()(keras.layers.Embedding(100, 16, weights=[table])(candidate))
    cosine = keras.layers.Lambda(lambda p: keras.ops.sum(p[0] * p[1], -1) / (norm(p[0]) * norm(p[1])))
    model = keras.Model([query, candidate], cosine([query, vector]))
    nandoctor.check(model)  # ND201, confirmed: ids of zero rows make the output NaN
    ```

    ## Use instead
    ```python
    import keras
    import nandoctor

    table = keras.ops.convert_to_numpy(keras.random.normal((100, 16)))
    table[10:20] = 0.0
    query, candidate = keras.Input((16,)), keras.Input((1,), dtype="int32")
    vector = keras.layers.Flatten()(keras.layers.Embedding(100, 16, weights=[table])(candidate))
    model = keras.Model([query, candidate], nandoctor.layers.SafeCosineSimilarity()([query, vector]))
    ```

    ## Known problems
    A guard is recognised by its shape (a maximum, an added constant, a division by an
    exponential); a guard computed elsewhere and passed in is not, and the NaN probe then
    decides: the finding stays at medium confidence unless the probe makes it NaN.
    """

    code = "ND201"
    evidence = (
        "a live model: the graph checks trace it (a suspicion, medium confidence) and the NaN probe runs "
        "it (high confidence). The static scan reports the code it cannot see as ND901, at info."
    )
    name = "unguarded-division"
    severity = Severity.ERROR
    evidence_kinds = (Evidence.MEASURED, Evidence.CERTAIN, Evidence.ADVERSARIAL)
    # A graph check judges structure; the NaN probe's measurement raises it to high.
    confidence = Confidence.MEDIUM
    fix = ("Guard the denominator inside the computation (x / (norm + eps) with a norm whose epsilon is inside its "
           "square root), or use nandoctor.layers.SafeCosineSimilarity / safe_l2_normalize.")
