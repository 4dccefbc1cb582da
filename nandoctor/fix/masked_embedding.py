"""ND301, ND302: a plain `Embedding` rewritten as `nandoctor.layers.MaskedEmbedding`, its
table kept: padding positions then output exactly zero and emit the mask."""

from __future__ import annotations

import numpy as np

from nandoctor.fix.config_tree import layer_entry
from nandoctor.fix.prescription import CannotFix, Prescription, Safety, embedding_of
from nandoctor.report import AppliedFix, Finding

_MASKED_EMBEDDING = {
    "module": "nandoctor.layers.masked_embedding",
    "class_name": "MaskedEmbedding",
    "registered_name": "nandoctor>MaskedEmbedding",
}


class MaskPadding(Prescription):
    codes = ("ND301", "ND302")
    safety = Safety.UNSAFE
    summary = (
        "unsafe: the `Embedding` becomes `nandoctor.layers.MaskedEmbedding` (its table kept, the padding row "
        "zeroed): padding positions output zero and are masked, so the model computes something new. The "
        "fixed file loads where nandoctor is imported."
    )

    def apply(self, editor, view, finding: Finding) -> AppliedFix:
        name = finding.details.get("mask_from", finding.layer) if finding.code == "ND302" else finding.layer
        if editor.config is None or editor.format not in ("keras", "keras-dir"):
            raise CannotFix("rewriting a layer's class is done in Keras 3 files (.keras) only")
        entry = layer_entry(editor.config, name)
        if entry.get("class_name") != "Embedding":
            raise CannotFix(f"'{name}' is a {entry.get('class_name')}, not a plain Embedding")
        _, matrix = embedding_of(view, name)  # before any change: a fix that cannot apply changes nothing
        config = entry["config"]
        mask_id = 0
        config.pop("mask_zero", None)
        config.pop("input_length", None)
        config["mask_id"] = mask_id
        entry.update(_MASKED_EMBEDDING)
        editor.set_rows(matrix, np.array([mask_id]), np.zeros((1, matrix.source.row_len), np.float32))
        return self.applied(
            finding,
            f"'{name}': Embedding -> nandoctor.layers.MaskedEmbedding(mask_id=0), table kept",
            [f"{name}: class Embedding -> MaskedEmbedding (mask_id=0); row 0 -> 0"],
        )
