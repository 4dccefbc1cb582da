from __future__ import annotations

from collections.abc import Iterator

from nandoctor.analysis.keras_facts import (
    COMPUTE_DTYPE_NORMALIZATIONS,
    EPSILON_KEYS,
    FLOAT32_NORMALIZATIONS,
    is_known_class,
)
from nandoctor.analysis.precision import FLOAT_FORMATS, layer_policies
from nandoctor.diagnosis import Rule
from nandoctor.report import Evidence, Finding, Severity
from nandoctor.view import ModelView


class EpsilonBelowResolution(Rule):
    """## What it does
    Finds a normalisation whose epsilon rounds to zero in the dtype it is added in.

    ## Why is this bad?
    A normalisation divides by `sqrt(variance + epsilon)`; the epsilon is all that keeps a
    constant row (padding, a blank image patch, a dead channel) from dividing 0 by 0. Cast to
    float16, any epsilon below 2.98e-8 (half the smallest float16, 5.96e-8) becomes exactly 0.
    Measured on Keras 3.15 with KerasHub's `T5LayerNorm` (which adds its epsilon in the
    layer's compute dtype) under `mixed_float16` and one all-zero row: `epsilon=1e-12` and
    `1e-8` give NaN in that row, `1e-7` and `1e-6` do not. Keras 3.15's own normalisations
    (`LayerNormalization`, `GroupNormalization`, `BatchNormalization`, `RMSNormalization`)
    and KerasHub's Llama-style RMS norms compute in float32 whatever the policy, and the same
    run gives no NaN with `epsilon=1e-12`: those are not reported (keras-team/keras#22586's
    GroupNormalization NaN came from inputs above 65504 cast to float16, fixed by #23070).
    A custom layer with an `epsilon` in its config is reported as `info`: the scan cannot see
    in which dtype its code adds it.

    ## Example
    ```python
    import keras
    from keras_hub.src.models.t5.t5_layer_norm import T5LayerNorm

    model = keras.Sequential([
        keras.Input((8,)),
        keras.layers.Dense(8, dtype="mixed_float16"),
        T5LayerNorm(epsilon=1e-8, dtype="mixed_float16", name="norm"),
    ])
    ```

    ## Use instead
    ```python
    import keras
    from keras_hub.src.models.t5.t5_layer_norm import T5LayerNorm

    model = keras.Sequential([
        keras.Input((8,)),
        keras.layers.Dense(8, dtype="mixed_float16"),
        T5LayerNorm(epsilon=1e-6, dtype="mixed_float16", name="norm"),
    ])
    ```

    ## Known problems
    An epsilon that float16 keeps only as a subnormal (below 6.1e-5, such as 1e-6) is not
    reported: it divides correctly on CPUs and GPUs that keep subnormals, and becomes 0 only
    where the hardware flushes them.

    ## References
    - Keras mixed precision guide: https://keras.io/guides/mixed_precision/
    - keras-team/keras#22586 (GroupNormalization, `epsilon=1e-12`, `mixed_float16`).
    """

    code = "ND801"
    name = "epsilon-below-resolution"
    severity = Severity.ERROR
    evidence_kinds = (Evidence.CERTAIN, Evidence.INFERRED)
    fix = 'Raise the epsilon to 1e-6 or more, or keep the normalisation in float32 with dtype="float32".'
    evidence = (
        "the config: each layer's saved dtype policy and epsilon, and whether its class adds the "
        "epsilon in float32 (Keras's own and KerasHub's, known by name); a custom layer's is inferred."
    )

    def check(self, view: ModelView) -> Iterator[Finding]:
        for layer, policy in layer_policies(view):
            if layer.is_model or layer.class_name in FLOAT32_NORMALIZATIONS:
                continue
            if not policy.computes_in_reduced_precision:
                continue
            known = layer.class_name in COMPUTE_DTYPE_NORMALIZATIONS
            if not known and is_known_class(layer.class_name, layer.module):
                continue
            dtype = FLOAT_FORMATS[policy.compute]
            for key in EPSILON_KEYS:
                epsilon = layer.config.get(key)
                if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)):
                    continue
                if not dtype.rounds_to_zero(float(epsilon)):
                    continue
                where = "adds it in" if known else "may add it in (custom code the scan cannot see)"
                yield self.finding(
                    layer.name,
                    f"{layer.class_name} {layer.name!r} has {key}={epsilon:g}, which is 0 in {dtype.name}, the "
                    f"dtype its policy {policy.name!r} computes in and the layer {where}: the smallest "
                    f"{dtype.name} is {dtype.smallest_subnormal:.3g}, so a constant row divides 0 by 0 (NaN)",
                    evidence=Evidence.CERTAIN if known else Evidence.INFERRED,
                    details={
                        "epsilon": float(epsilon),
                        "key": key,
                        "policy": policy.name,
                        "compute_dtype": dtype.name,
                        "smallest": dtype.smallest_subnormal,
                    },
                )
