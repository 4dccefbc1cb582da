"""The one registry of rules, and selecting them by code, family or name."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from nandoctor.rule import Rule
from nandoctor.rules.broken_tie import BrokenTie
from nandoctor.rules.collapsed_weights import CollapsedWeights
from nandoctor.rules.loss_activation_mismatch import LossActivationMismatch
from nandoctor.rules.malformed_positional_table import MalformedPositionalTable
from nandoctor.rules.mask_dropped import MaskDropped
from nandoctor.rules.missing_causal_mask import MissingCausalMask
from nandoctor.rules.nonfinite_weights import NonfiniteWeights
from nandoctor.rules.opaque_code import OpaqueCode
from nandoctor.rules.padding_not_masked import PaddingNotMasked
from nandoctor.rules.padding_row_not_zero import PaddingRowNotZero
from nandoctor.rules.positional_scale_mismatch import PositionalScaleMismatch
from nandoctor.rules.positional_table_too_short import PositionalTableTooShort
from nandoctor.rules.untied_embeddings import UntiedEmbeddings
from nandoctor.rules.zero_embedding_rows import ZeroEmbeddingRows

RULES: list[type[Rule]] = [
    ZeroEmbeddingRows,
    NonfiniteWeights,
    CollapsedWeights,
    PaddingNotMasked,
    MaskDropped,
    PaddingRowNotZero,
    UntiedEmbeddings,
    BrokenTie,
    MissingCausalMask,
    MalformedPositionalTable,
    PositionalScaleMismatch,
    PositionalTableTooShort,
    LossActivationMismatch,
    OpaqueCode,
]


def find_rule(code_or_name: str) -> type[Rule] | None:
    key = code_or_name.strip()
    for rule in RULES:
        if key.upper() == rule.code or key.lower() == rule.name:
            return rule
    return None


def _matching(selector: str) -> list[type[Rule]]:
    key = selector.strip()
    if key.upper() == "ALL":
        return list(RULES)
    rule = find_rule(key)
    if rule is not None:
        return [rule]
    family = [rule for rule in RULES if key.upper().startswith("ND") and rule.code.startswith(key.upper())]
    if family and len(key) < len("ND101"):
        return family
    raise ValueError(
        "Unknown rule selector. Expected a code (ND101), a family (ND1), a name "
        f"(zero-embedding-rows) or ALL. Received: {selector!r}"
    )


def split_selectors(values: Iterable[str] | None) -> list[str]:
    """`["ND1,ND601", "opaque-code"]` -> `["ND1", "ND601", "opaque-code"]`."""
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


def select_rules(
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Rule]:
    """Instances of the selected rules minus the ignored ones, in registry order."""
    selected = RULES if not select else [rule for sel in split_selectors(select) for rule in _matching(sel)]
    ignored = {rule for sel in split_selectors(ignore) for rule in _matching(sel)}
    settings: dict[type[Rule], Mapping[str, Any]] = {}
    for key, values in (options or {}).items():
        rule = find_rule(key)
        if rule is None:
            raise ValueError(f"Options given for an unknown rule. Expected a code or name. Received: {key!r}")
        settings[rule] = values
    return [rule(**settings.get(rule, {})) for rule in RULES if rule in selected and rule not in ignored]
