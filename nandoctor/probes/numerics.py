"""The rules the graph checks report under: ND201, ND202, ND203 (DESIGN.md's catalogue).

They run on a live model only (`nandoctor.check(model)`, `nandoctor scan --trust`): the
graph checks read the forward graph of Lambdas, custom layers and `keras.ops` calls, and
the NaN probe confirms a suspicion by making the division, root or log meet its zero.
"""

from __future__ import annotations

from nandoctor.report import Confidence, Finding, Severity
from nandoctor.rule import Diagnosis


class NumericsRule(Diagnosis):
    severity = Severity.ERROR
    # A graph check judges structure; the NaN probe's measurement raises it to high.
    confidence = Confidence.MEDIUM

    @classmethod
    def finding(cls, layer: str, message: str, operation: str) -> Finding:
        return Finding(cls.code, cls.name, cls.severity, cls.confidence, layer, message, cls.fix,
                       {"operation": operation})


class UnguardedDivision(NumericsRule):
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

    table = keras.random.normal((100, 16)).numpy()
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

    table = keras.random.normal((100, 16)).numpy()
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
    name = "unguarded-division"
    fix = ("Guard the denominator inside the computation (x / (norm + eps) with a norm whose epsilon is inside its "
           "square root), or use nandoctor.layers.SafeCosineSimilarity / safe_l2_normalize.")


class SingularGradient(NumericsRule):
    """## What it does
    Finds square roots, fractional powers and arc-cosines whose argument can reach the
    point where their derivative is infinite.

    ## Why is this bad?
    `sqrt(sum(x**2))` is the norm, finite at a zero vector, but its derivative there is
    1/0: wherever a gradient flows into it, the gradient is NaN. A guard outside the root,
    `maximum(norm(a) * norm(b), epsilon)`, keeps the value finite and turns the gradient
    for a zero vector into 1/epsilon (1e7, measured on TensorFlow 2.21): Adam's update
    stays bounded, SGD's does not, and against large vectors it overflows. The epsilon
    belongs inside the root.

    ## Example
    ```python
    import keras
    import nandoctor

    norm = lambda t: keras.ops.sqrt(keras.ops.sum(t * t, axis=-1))
    a, b = keras.Input((16,)), keras.Input((16,))
    guarded = keras.layers.Lambda(lambda p: keras.ops.sum(p[0] * p[1], -1) / keras.ops.maximum(norm(p[0]) * norm(p[1]), 1e-7))
    model = keras.Model([a, b], guarded([a, b]))
    nandoctor.check(model)  # ND202: the square roots are taken at 0, the guard sits outside them
    ```

    ## Use instead
    ```python
    import keras
    import nandoctor

    a, b = keras.Input((16,)), keras.Input((16,))
    model = keras.Model([a, b], nandoctor.layers.SafeCosineSimilarity()([a, b]))
    ```

    ## Known problems
    `keras.ops.arccos` is judged singular unless its argument is clipped inside (-1, 1).
    """

    code = "ND202"
    name = "singular-gradient"
    fix = "Put the epsilon inside the square root: sqrt(sum(x**2) + eps**2) (nandoctor.layers.safe_norm)."


class UnguardedLog(NumericsRule):
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
    name = "unguarded-log"
    fix = "Work in log space (keras.ops.log_softmax, or a loss with from_logits=True), or take log(x + eps)."
