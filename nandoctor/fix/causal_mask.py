"""ND501: self-attention in a next-token model called with `use_causal_mask=True`."""

from __future__ import annotations

from nandoctor.fix.config_tree import layer_entry, set_call_argument
from nandoctor.fix.prescription import CannotFix, Prescription, Safety
from nandoctor.report import AppliedFix, Finding


class CausalMask(Prescription):
    codes = ("ND501",)
    safety = Safety.UNSAFE
    summary = (
        "unsafe: every call of the self-attention gets `use_causal_mask=True`, so no position sees the ones "
        "after it; the model computes something new and needs training."
    )

    def apply(self, editor, view, finding: Finding) -> AppliedFix:
        if editor.config is None:
            raise CannotFix("the file has no model config")
        entry = layer_entry(editor.config, finding.layer)
        if entry.get("class_name") != "MultiHeadAttention":
            raise CannotFix(
                f"'{finding.layer}' is a {entry.get('class_name')}: only MultiHeadAttention takes use_causal_mask"
            )
        calls = set_call_argument(entry, "use_causal_mask", True)
        return self.applied(
            finding,
            f"'{finding.layer}': use_causal_mask=True on {calls} call{'s' if calls > 1 else ''}",
            [f"{finding.layer}: call(..., use_causal_mask=True)"],
        )
