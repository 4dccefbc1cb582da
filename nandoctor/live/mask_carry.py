"""Settles what the scan could not see about masks: whether a custom layer keeps one."""

from __future__ import annotations

from collections.abc import Iterator

from nandoctor.live.live_check import LiveCheck
from nandoctor.live.model_layers import layer_named
from nandoctor.report import Confidence, Evidence, Finding
from nandoctor.rules.mask_dropped import MaskDropped


class MaskCarry(LiveCheck):
    """## What it does
    For each custom layer or Lambda that a padding mask reaches, reads the live layer: it
    keeps the mask when it sets `supports_masking` or defines its own `compute_mask`, as
    Keras itself decides; otherwise Keras drops the mask there.

    ## Why is this bad?
    A dropped mask lets the layers after it read padding as tokens (ND302). The static scan
    cannot see a custom layer's code and says so at `info`; the live layer says which it is:
    the suspicion is withdrawn, or raised to a warning with the evidence.
    """

    name = "mask-carry"
    raises = (MaskDropped,)
    settles = ("ND302",)

    def run(self, model, view) -> Iterator[Finding]:
        return iter(())

    def settle(self, finding: Finding, model) -> Finding | None:
        if not finding.details.get("opaque") or finding.layer is None:
            return finding
        live = layer_named(model, finding.layer.rsplit("/", 1)[-1])
        if live is None:
            return finding
        import keras

        defines = type(live).compute_mask is not keras.layers.Layer.compute_mask
        if getattr(live, "supports_masking", False) or defines:
            return None  # it keeps the mask: no finding
        return MaskDropped.reconsidered(
            finding,
            evidence=Evidence.CERTAIN,
            severity=MaskDropped.severity,
            confidence=Confidence.HIGH,
            message=(
                f"{type(live).__name__} '{live.name}' neither sets supports_masking nor defines compute_mask "
                f"(read on the live layer): Keras drops the padding mask of '{finding.details['mask_from']}' "
                f"there, before '{finding.details['consumer']}'"
            ),
            details={**finding.details, "opaque": False, "settled_on": "live layer"},
        )
