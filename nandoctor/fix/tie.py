"""ND402: a hand-written or copied tie rewritten as one `nandoctor.layers.TiedEmbedding`,
called again with `reverse=True` for the output; the file's input matrix kept, the copy
dropped."""

from __future__ import annotations

import copy

from nandoctor.fix.config_tree import layer_entry
from nandoctor.fix.prescription import CannotFix, Prescription, Safety
from nandoctor.report import AppliedFix, Finding

_TIED_EMBEDDING = {
    "module": "nandoctor.layers.tied_embedding",
    "class_name": "TiedEmbedding",
    "registered_name": "nandoctor>TiedEmbedding",
}


class TieOnce(Prescription):
    codes = ("ND402",)
    safety = Safety.SAFE
    summary = (
        "safe: the embedding becomes `nandoctor.layers.TiedEmbedding` and the output layer its call with "
        "`reverse=True` (an `Activation` of the output's name keeps the model's outputs and loss keys); the "
        "input matrix is kept and a stored copy dropped, so the model computes the tie it declared. Keras 3 "
        "functional files; the fixed file loads where nandoctor is imported."
    )

    def applies_to(self, finding: Finding) -> bool:
        return finding.code in self.codes and bool(finding.details.get("embedding")) and "class_name" in finding.details

    def apply(self, editor, view, finding: Finding) -> AppliedFix:
        if editor.config is None or editor.format not in ("keras", "keras-dir"):
            raise CannotFix("rewriting a tie is done in Keras 3 files (.keras) only")
        embedding_name = finding.details["embedding"]
        embedding, output = layer_entry(editor.config, embedding_name), layer_entry(editor.config, finding.layer)
        if embedding.get("class_name") != "Embedding":
            raise CannotFix(f"'{embedding_name}' is a {embedding.get('class_name')}, not a plain Embedding")
        calls, nodes = embedding.get("inbound_nodes"), output.get("inbound_nodes")
        if not (
            isinstance(calls, list)
            and isinstance(nodes, list)
            and len(nodes) == 1
            and isinstance(nodes[0], dict)
            and len(nodes[0].get("args", [])) == 1
        ):
            raise CannotFix(f"'{finding.layer}' is not called once on one tensor in a functional model")
        hidden = nodes[0]["args"][0]
        vocabulary = embedding["config"]["input_dim"]
        embedding.update(_TIED_EMBEDDING)
        embedding["config"].pop("input_length", None)
        calls.append({"args": [hidden], "kwargs": {"reverse": True}})
        logits = copy.deepcopy(hidden)
        tensor = logits.get("config", {}) if isinstance(logits, dict) else {}
        if isinstance(tensor.get("shape"), list):
            tensor["shape"] = [*tensor["shape"][:-1], vocabulary]
        tensor["keras_history"] = [embedding_name.rsplit("/", 1)[-1], len(calls) - 1, 0]
        activation = output.get("config", {}).get("activation")
        activation = activation if isinstance(activation, str) else "linear"
        dropped = editor.drop_weights(finding.layer)
        output.clear()
        output.update(
            module="keras.layers",
            class_name="Activation",
            registered_name=None,
            name=finding.layer,
            config={"name": finding.layer, "trainable": True, "activation": activation},
            inbound_nodes=[{"args": [logits], "kwargs": {}}],
        )
        changes = [
            f"{embedding_name}: class Embedding -> TiedEmbedding, matrix kept",
            f"{finding.layer}: {finding.details['class_name']} -> {embedding_name}(..., reverse=True) then "
            f"Activation({activation!r})",
        ]
        if dropped:
            changes.append(f"{finding.layer}: stored copy {', '.join(dropped)} dropped")
        return self.applied(
            finding,
            f"'{finding.layer}' rewritten as '{embedding_name}' (TiedEmbedding) called with "
            "reverse=True: one matrix, saved once",
            changes,
        )
