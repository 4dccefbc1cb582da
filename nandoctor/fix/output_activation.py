"""ND601: an output activation that does not match its loss, rewritten in the config."""

from __future__ import annotations

from nandoctor.fix.config_tree import entry_name, layer_entry
from nandoctor.fix.prescription import CannotFix, Prescription, Safety
from nandoctor.report import AppliedFix, Finding


def _set_activation(editor, finding: Finding, activation: str) -> str:
    """Give the finding's layer `activation`; a `Softmax` layer becomes an `Activation`
    layer, which has no weights either. The old activation is returned."""
    if editor.config is None:
        raise CannotFix("the file has no model config")
    entry = layer_entry(editor.config, finding.layer)
    config = entry.get("config")
    if not isinstance(config, dict):
        raise CannotFix(f"layer {finding.layer!r} has no config")
    if entry.get("class_name") == "Softmax":
        entry.update(class_name="Activation", module="keras.layers", registered_name=None)
        entry["config"] = {key: config[key] for key in ("name", "trainable", "dtype") if key in config}
        entry["config"]["activation"] = activation
        return "Softmax layer"
    if "activation" not in config:
        raise CannotFix(f"layer {entry_name(entry)!r} ({entry.get('class_name')}) has no activation to change")
    old = config["activation"]
    config["activation"] = activation
    return repr(old if isinstance(old, str) else old.get("class_name") if isinstance(old, dict) else old)


class SigmoidForOneUnit(Prescription):
    codes = ("ND601",)
    safety = Safety.SAFE
    summary = "safe: a softmax over one unit (always 1.0) becomes the sigmoid it stood for."

    def applies_to(self, finding: Finding) -> bool:
        return (
            finding.code in self.codes
            and finding.details.get("units") == 1
            and finding.details.get("activation") == "softmax"
        )

    def apply(self, editor, view, finding: Finding) -> AppliedFix:
        old = _set_activation(editor, finding, "sigmoid")
        return self.applied(
            finding,
            f"'{finding.layer}': softmax over one unit -> sigmoid",
            [f"{finding.layer}: activation {old} -> 'sigmoid'"],
        )


# What each cross-entropy reads its output as, and the activation that gives it that.
_ACTIVATION_FOR_READING = {
    "class distribution": "softmax",
    "label probabilities": "sigmoid",
    "class logits": "linear",
    "label logits": "linear",
}


class ProbabilityOutput(Prescription):
    codes = ("ND601",)
    safety = Safety.UNSAFE
    summary = (
        "unsafe: an output that is not a probability under a probability loss gets softmax (sigmoid for "
        "a binary loss), and one that is under a loss with from_logits=True becomes linear; the model then "
        "needs training."
    )

    def applies_to(self, finding: Finding) -> bool:
        # Only the cross-entropies say which activation they read; a regression, Poisson or hinge
        # loss on the wrong output needs a choice of loss or activation that no rewrite can make.
        return (
            finding.code in self.codes
            and finding.details.get("units") != 1
            and bool(finding.details.get("loss"))
            and finding.details.get("reading") in _ACTIVATION_FOR_READING
        )

    def apply(self, editor, view, finding: Finding) -> AppliedFix:
        wanted = _ACTIVATION_FOR_READING[finding.details["reading"]]
        old = _set_activation(editor, finding, wanted)
        return self.applied(
            finding,
            f"'{finding.layer}': activation {old} -> '{wanted}' under {finding.details['loss']}",
            [f"{finding.layer}: activation {old} -> {wanted!r}"],
        )
