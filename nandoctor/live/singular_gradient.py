from __future__ import annotations

from nandoctor.diagnosis import LiveRule
from nandoctor.report import Confidence, Evidence, Severity

# The cure for each operation whose derivative is infinite somewhere, by what the checks see of it.
ROOT_FIX = "Put the epsilon inside the square root: sqrt(sum(x**2) + eps**2) (nandoctor.layers.safe_norm)."
CLAMPED_ROOT_FIX = (
    "Move the epsilon from the maximum into each square root: nandoctor.layers.SafeCosineSimilarity "
    "for a cosine, nandoctor.layers.safe_norm for a norm; the clamp keeps the value, not the gradient."
)
POWER_FIX = (
    "Keep the base of the fractional power away from 0: (x + eps) ** p with a positive eps, or maximum(x, eps) ** p."
)
ANGLE_FIX = (
    "Clip the argument strictly inside (-1, 1) before arccos or arcsin, keras.ops.clip(c, -1 + 1e-6, 1 - 1e-6); "
    "for an angle between vectors, 1 - cosine (nandoctor.layers.SafeCosineSimilarity) needs no arccos."
)
ARCTAN2_FIX = "Keep (y, x) away from (0, 0): add a small epsilon to x, or to both, before keras.ops.arctan2."


class SingularGradient(LiveRule):
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

    The finding's fix names the cure for the operation: the epsilon inside a square root, moved
    from a maximum outside the roots into them, a fractional power's base kept from 0, an
    arc-cosine's argument clipped inside (-1, 1), an arctan2 kept from (0, 0).

    ## Known problems
    `keras.ops.arccos` is judged singular unless its argument is clipped inside (-1, 1).
    """

    code = "ND202"
    evidence = "a live model, as ND201. The static scan reports unseen code as ND901, at info."
    name = "singular-gradient"
    severity = Severity.ERROR
    evidence_kinds = (Evidence.MEASURED, Evidence.CERTAIN, Evidence.ADVERSARIAL)
    # A graph check judges structure; the NaN probe's measurement raises it to high.
    confidence = Confidence.MEDIUM
    fix = ROOT_FIX

    @classmethod
    def fix_for(cls, operation) -> str:
        """The cure for `operation` (a traced TensorFlow operation or JAX equation read alike):
        a clamp outside roots, a fractional power, an arc-cosine or arc-sine, an arctan2, or a
        square root."""
        if operation.type in ("RealDiv", "Div", "Reciprocal", "Inv"):
            return CLAMPED_ROOT_FIX  # a division is singular only through a maximum outside its roots
        if operation.type == "Pow":
            return POWER_FIX
        if operation.type in ("Acos", "Asin"):
            return ANGLE_FIX
        if operation.type == "Atan2":
            return ARCTAN2_FIX
        return ROOT_FIX
