"""What an output layer computes, as far as the loss cares: its activation and width."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nandoctor.analysis.keras_facts import ACTIVATION_LAYERS, VALUE_PASSTHROUGH
from nandoctor.view import Layer, ModelView

# Losses that read the model's outputs as probabilities unless `from_logits=True`.
CATEGORICAL_LOSSES = frozenset(
    {"categorical_crossentropy", "sparse_categorical_crossentropy", "categorical_focal_crossentropy"}
)
BINARY_LOSSES = frozenset({"binary_crossentropy", "binary_focal_crossentropy"})


# What a Keras 3 loss reads the model's output as, by its canonical name (every class and string
# alias of keras.losses resolves to one) and its `from_logits`.
def loss_reading(name: str, from_logits: bool) -> str | None:
    if name in CATEGORICAL_LOSSES:
        return "class logits" if from_logits else "class distribution"
    if name in BINARY_LOSSES:
        return "label logits" if from_logits else "label probabilities"
    return LOSS_READINGS.get(name)


LOSS_READINGS = {
    "kl_divergence": "distribution compared",  # clips to [eps, 1] and never renormalises
    "mean_squared_error": "real values",
    "mean_absolute_error": "real values",
    "huber": "real values",
    "log_cosh": "real values",
    "mean_absolute_percentage_error": "real values",
    "mean_squared_logarithmic_error": "non-negative values",  # log(max(y_pred, eps) + 1)
    "poisson": "positive rates",  # y_pred - y_true * log(y_pred + eps), no clip: NaN below 0
    "hinge": "margin scores",
    "squared_hinge": "margin scores",  # labels -1/1, decision at 0
    "categorical_hinge": "class scores",
    "cosine_similarity": "directions",
    "circle": "directions",
    "dice": "overlap probabilities",
    "tversky": "overlap probabilities",
    "ctc": "sequence logits",  # log_softmax is applied inside (tf.nn.ctc_loss, jax.nn.log_softmax)
}

# Output activations by the range of what they output (Keras 3 names, and Keras 2's swish).
ACTIVATION_RANGES = {
    "softmax": "distribution",
    "sparsemax": "sparse distribution",
    "sigmoid": "unit interval",
    "hard_sigmoid": "unit interval",
    "sparse_sigmoid": "unit interval",
    "relu": "non-negative",
    "relu6": "non-negative",
    "softplus": "non-negative",
    "exponential": "non-negative",
    "sparse_plus": "non-negative",
    "squareplus": "non-negative",
    "tanh": "symmetric",
    "softsign": "symmetric",
    "hard_tanh": "symmetric",
    "log_softmax": "log-probabilities",
    "log_sigmoid": "log-probabilities",
    **dict.fromkeys(
        (
            "linear",
            "leaky_relu",
            "prelu",
            "elu",
            "selu",
            "celu",
            "gelu",
            "silu",
            "swish",
            "hard_silu",
            "hard_swish",
            "mish",
            "glu",
            "hard_shrink",
            "soft_shrink",
            "tanh_shrink",
            "threshold",
        ),
        "real",
    ),
}

# The values each bounded range can take: the targets an output of that range can reach.
RANGE_BOUNDS = {
    "unit interval": (0.0, 1.0),
    "distribution": (0.0, 1.0),
    "sparse distribution": (0.0, 1.0),
    "non-negative": (0.0, float("inf")),
    "symmetric": (-1.0, 1.0),
}


@dataclass(frozen=True)
class Verdict:
    """One cell: how bad an output range is under a loss's reading, why, and the cure."""

    severity: str  # "error": cannot learn or meaningless output; "warning": costs accuracy; "info"
    why: str
    fix: str
    quiet_at_units: int | None = None  # a width at which the pair is right after all


_SOFTMAX_OR_LOGITS = (
    "Use activation='softmax' on the output layer, or keep it linear and compile the loss with from_logits=True."
)
_SIGMOID_OR_LOGITS = (
    "Use activation='sigmoid' on the output layer, or keep it linear and compile the loss with from_logits=True."
)
_LINEAR_LOGITS = "Make the output layer linear (activation=None): the loss applies the normalisation itself."
_NOT_A_DISTRIBUTION = Verdict(
    "error",
    "outputs that are not normalised (they can be negative or all zero), so the "
    "loss renormalises and clips them and takes the log of garbage: the model stalls",
    _SOFTMAX_OR_LOGITS,
)
_NOT_PROBABILITIES = Verdict(
    "error",
    "outputs that are not bounded to [0, 1], so the loss clips them and their gradients vanish",
    _SIGMOID_OR_LOGITS,
)
_SPARSE_UNDER_LOG = Verdict(
    "warning",
    "exact zeros, which the loss clips to epsilon: a sample whose true class gets 0 has no gradient at all",
    "Use softmax, or a sparsemax loss.",
)
_BOUNDED_LOGITS = "logits confined to a small interval, so the probabilities cannot become confident"

# THE table: (what the loss reads, what the activation outputs) -> verdict. A pair not listed is fine.
LOSS_ACTIVATION_TABLE: dict[tuple[str, str], Verdict] = {
    # categorical cross-entropies from probabilities: y_pred / sum(y_pred), clipped, log.
    ("class distribution", "sparse distribution"): _SPARSE_UNDER_LOG,
    ("class distribution", "unit interval"): Verdict(
        "warning",
        "sigmoid outputs, which are not a distribution over classes: Keras renormalises them by their "
        "sum, which hides the mismatch and distorts the gradients",
        _SOFTMAX_OR_LOGITS,
    ),
    ("class distribution", "non-negative"): _NOT_A_DISTRIBUTION,
    ("class distribution", "symmetric"): _NOT_A_DISTRIBUTION,
    ("class distribution", "log-probabilities"): Verdict(
        "error",
        "log-probabilities (all <= 0), which the loss divides by their sum and reads as probabilities: the "
        "likeliest class gets the smallest share",
        "Compile the loss with from_logits=True: log-probabilities are valid logits.",
    ),
    ("class distribution", "real"): _NOT_A_DISTRIBUTION,
    # categorical cross-entropies from logits: softmax inside.
    ("class logits", "distribution"): Verdict(
        "warning",
        "probabilities already, and the loss applies softmax again, which flattens the gradients",
        _LINEAR_LOGITS,
    ),
    ("class logits", "sparse distribution"): Verdict(
        "warning", "probabilities already, and the loss applies softmax again", _LINEAR_LOGITS
    ),
    ("class logits", "unit interval"): Verdict("warning", f"{_BOUNDED_LOGITS} ([0, 1])", _LINEAR_LOGITS),
    ("class logits", "symmetric"): Verdict("warning", f"{_BOUNDED_LOGITS} ([-1, 1])", _LINEAR_LOGITS),
    # binary cross-entropies from probabilities: clip(y_pred, eps, 1 - eps), log of each.
    ("label probabilities", "distribution"): Verdict(
        "warning",
        "a softmax, which makes the labels compete for one unit of probability, while binary "
        "cross-entropy scores each label on its own",
        "Use activation='sigmoid' for independent labels, or categorical_crossentropy for one class per sample.",
        quiet_at_units=2,
    ),
    ("label probabilities", "sparse distribution"): Verdict(
        "warning",
        "a sparsemax, which makes the labels compete for one unit of probability",
        "Use activation='sigmoid' for independent labels.",
        quiet_at_units=2,
    ),
    ("label probabilities", "non-negative"): _NOT_PROBABILITIES,
    ("label probabilities", "symmetric"): _NOT_PROBABILITIES,
    ("label probabilities", "log-probabilities"): _NOT_PROBABILITIES,
    ("label probabilities", "real"): _NOT_PROBABILITIES,
    # binary cross-entropies from logits: sigmoid inside.
    ("label logits", "distribution"): Verdict(
        "warning",
        "probabilities already, and the loss applies sigmoid again: every probability lands in [0.5, 0.73]",
        _LINEAR_LOGITS,
    ),
    ("label logits", "sparse distribution"): Verdict(
        "warning", "probabilities already, and the loss applies sigmoid again", _LINEAR_LOGITS
    ),
    ("label logits", "unit interval"): Verdict(
        "warning",
        "probabilities already, and the loss applies sigmoid again: every probability lands in [0.5, 0.73]",
        _LINEAR_LOGITS,
    ),
    ("label logits", "non-negative"): Verdict(
        "error",
        "logits that are never negative, so the loss's sigmoid gives every sample a probability of at "
        "least 0.5: the negative label can never be predicted",
        _LINEAR_LOGITS,
    ),
    ("label logits", "log-probabilities"): Verdict(
        "error",
        "logits that are never positive, so the loss's sigmoid gives every sample a probability of at "
        "most 0.5: the positive label can never be predicted",
        _LINEAR_LOGITS,
    ),
    ("label logits", "symmetric"): Verdict(
        "warning", f"{_BOUNDED_LOGITS} ([-1, 1]: probabilities in [0.27, 0.73])", _LINEAR_LOGITS
    ),
    # kl_divergence: clip both to [eps, 1], sum(p * log(p / q)); q is never renormalised.
    ("distribution compared", "sparse distribution"): _SPARSE_UNDER_LOG,
    **{
        ("distribution compared", kind): Verdict(
            "error",
            "outputs that are not a distribution, which kl_divergence neither normalises nor bounds: it is "
            "lowest when every output is 1, whatever the target",
            "Use activation='softmax' on the output layer.",
        )
        for kind in ("unit interval", "non-negative", "symmetric", "log-probabilities", "real")
    },
    # regression losses on outputs that are probabilities.
    ("real values", "distribution"): Verdict(
        "warning",
        "a distribution, whose errors reach the weights through the softmax's Jacobian: a confidently "
        "wrong class has almost no gradient (a cross-entropy has none of this)",
        "Use categorical_crossentropy (or kl_divergence for soft targets) on a softmax output.",
    ),
    ("real values", "sparse distribution"): Verdict(
        "warning", "a distribution with exact zeros, which pass no gradient back", "Use a cross-entropy."
    ),
    ("real values", "unit interval"): Verdict(
        "info",
        "values in [0, 1]: right for targets there (pixel intensities), but binary or multi-label targets "
        "learn faster under binary_crossentropy, and targets outside [0, 1] (distances, counts) are out of reach",
        "Use binary_crossentropy for labels, or a linear output for targets outside [0, 1].",
    ),
    # mean_squared_logarithmic_error: log(max(y_pred, eps) + 1).
    **{
        ("non-negative values", kind): Verdict(
            "warning",
            "outputs that can go below zero, where mean_squared_logarithmic_error clips them to epsilon: "
            "a prediction below zero has no gradient and stays there",
            "Use a non-negative output activation (softplus, relu, exponential).",
        )
        for kind in ("symmetric", "real")
    },
    ("non-negative values", "log-probabilities"): Verdict(
        "error",
        "outputs that are never positive, all clipped to epsilon by mean_squared_logarithmic_error: "
        "no gradient reaches the model",
        "Use a non-negative output activation (softplus, relu, exponential).",
    ),
    **{
        ("non-negative values", kind): Verdict(
            "info",
            "outputs bounded by 1, while a logarithmic error is for targets spanning orders of magnitude",
            "Use a non-negative unbounded output activation (softplus, exponential).",
        )
        for kind in ("distribution", "sparse distribution", "unit interval")
    },
    # poisson: y_pred - y_true * log(y_pred + eps), no clip.
    **{
        ("positive rates", kind): Verdict(
            "error",
            "outputs that can be negative, and poisson takes log(y_pred + epsilon) without a clip: NaN for "
            "every negative prediction",
            "Use activation='softplus' or 'exponential' on the output layer.",
        )
        for kind in ("symmetric", "log-probabilities", "real")
    },
    **{
        ("positive rates", kind): Verdict(
            "info",
            "rates bounded by 1, so counts above 1 are out of reach",
            "Use activation='softplus' or 'exponential' on the output layer.",
        )
        for kind in ("distribution", "sparse distribution", "unit interval")
    },
    # hinge, squared_hinge: labels -1/1, max(1 - y * y_pred, 0), decided by the sign of y_pred.
    **{
        ("margin scores", kind): Verdict(
            "warning",
            "scores that never go below zero, while hinge decides by the sign and wants the negative class "
            "at -1 or below: that margin is never met",
            "Use a linear (or tanh) output layer.",
        )
        for kind in ("distribution", "sparse distribution", "unit interval", "non-negative")
    },
    ("margin scores", "log-probabilities"): Verdict(
        "warning",
        "scores that never go above zero, while hinge wants the positive class at +1 or above",
        "Use a linear (or tanh) output layer.",
    ),
    # dice, tversky: overlap ratios of y_pred with the mask, expected in [0, 1].
    ("overlap probabilities", "non-negative"): Verdict(
        "warning",
        "unbounded outputs, which inflate the overlap ratio past 1: the loss rewards larger outputs "
        "rather than better overlap",
        "Use activation='sigmoid' (or softmax over classes) on the output layer.",
    ),
    **{
        ("overlap probabilities", kind): Verdict(
            "error",
            "outputs that can be negative, so the ratio's denominator (the sums of mask and prediction) "
            "can cross zero: the loss is unbounded and can be infinite",
            "Use activation='sigmoid' (or softmax over classes) on the output layer.",
        )
        for kind in ("symmetric", "log-probabilities", "real")
    },
    # ctc: log_softmax applied to the outputs inside the loss.
    ("sequence logits", "distribution"): Verdict(
        "warning",
        "probabilities already, and CTC applies log_softmax to them again, which flattens the gradients",
        _LINEAR_LOGITS,
    ),
    ("sequence logits", "sparse distribution"): Verdict(
        "warning", "probabilities already, and CTC applies log_softmax to them again", _LINEAR_LOGITS
    ),
    ("sequence logits", "unit interval"): Verdict("warning", f"{_BOUNDED_LOGITS} ([0, 1])", _LINEAR_LOGITS),
    ("sequence logits", "symmetric"): Verdict("warning", f"{_BOUNDED_LOGITS} ([-1, 1])", _LINEAR_LOGITS),
}

# One unit under a loss that normalises over classes: softmax of one value is 1.0, whatever it is.
ONE_UNIT_READINGS = frozenset({"class distribution", "class logits"})


def activation_name(value: Any) -> str:
    """`"relu"`, or Keras 3's serialized `{"class_name": "function", "config": "relu"}`."""
    if value is None:
        return "linear"
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        config = value.get("config")
        if isinstance(config, str):
            return config
        if isinstance(value.get("class_name"), str):
            return value["class_name"].lower()
    return str(value)


def output_activation(view: ModelView, name: str) -> tuple[str, Layer] | None:
    """The activation that last shapes output `name`, and the layer that applies it."""
    layer = view.layer(name)
    seen = set()
    while layer is not None and layer.name not in seen:
        seen.add(layer.name)
        config = wrapped_config(layer)
        if layer.class_name in ACTIVATION_LAYERS:
            return ACTIVATION_LAYERS[layer.class_name], layer
        if "activation" in config:
            return activation_name(config["activation"]), layer
        if layer.class_name not in VALUE_PASSTHROUGH:
            return None
        producers = view.producers(layer.name)
        if len(producers) != 1:
            return None
        layer = view.layer(producers[0].source)
    return None


def wrapped_config(layer: Layer) -> dict[str, Any]:
    """The config that holds the maths: the wrapped layer's for TimeDistributed and Bidirectional."""
    config = layer.config
    if layer.class_name in ("TimeDistributed", "Bidirectional") and isinstance(config.get("layer"), dict):
        return config["layer"].get("config") or {}
    return config


def output_units(view: ModelView, layer: Layer) -> int | None:
    """How many values the activation normalises over: the nearest Dense's `units`."""
    current: Layer | None = layer
    for _ in range(8):
        if current is None:
            return None
        config = wrapped_config(current)
        if isinstance(config.get("units"), int):
            return config["units"]
        producers = view.producers(current.name)
        if len(producers) != 1 or current.class_name not in VALUE_PASSTHROUGH | set(ACTIVATION_LAYERS) | {"Activation"}:
            return None
        current = view.layer(producers[0].source)
    return None


def table_grid() -> str:
    """LOSS_ACTIVATION_TABLE as the Markdown grid the rule's page shows: E error, W warning,
    i info, . fine; * quiet at the width named (a softmax over two labels)."""
    ranges = list(dict.fromkeys(ACTIVATION_RANGES.values()))
    readings = [
        "class distribution",
        "class logits",
        "label probabilities",
        "label logits",
        *dict.fromkeys(LOSS_READINGS.values()),
    ]
    marks = {"error": "E", "warning": "W", "info": "i"}
    rows = ["| loss reads the output as | " + " | ".join(ranges) + " |", "|---" * (len(ranges) + 1) + "|"]
    for reading in readings:
        cells = [
            (marks[v.severity] + ("*" if v.quiet_at_units else ""))
            if (v := LOSS_ACTIVATION_TABLE.get((reading, kind)))
            else "."
            for kind in ranges
        ]
        rows.append(f"| {reading} | " + " | ".join(cells) + " |")
    return "\n".join(rows)
