"""THE one list of every diagnosis, and the one `select`/`ignore` resolution every way in uses.

`scan`, `check`, `scan --trust`, `Monitor`, the CLI, the docs generator and the reporters all
read `DIAGNOSES` and `Selection`; none of them names a particular code. Adding a diagnosis is
its module plus one line below (`python -m nandoctor.scaffold` writes both).

A selector is a code (`ND301`), a code prefix or family (`ND3`, `ND30`), a name
(`padding-not-masked`) or `ALL`. In `ignore`, `SELECTOR:LAYER` suppresses the findings of
those codes on the layers whose name matches `LAYER` (a glob): they still run, and the report
counts what was suppressed, as per-file ignores do.
"""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from nandoctor.diagnosis import Diagnosis, RunsOn
from nandoctor.report import Finding


@dataclass(frozen=True)
class _Later:
    """A diagnosis, imported when first asked for. Rule modules import numpy and the analysis
    they share, and live checks and training detectors what runs a live model: selecting,
    naming and keying the cache need none of it, so a scan answered from its cache never
    imports them. Its code, name and place are stated here (tests/test_catalogue.py checks
    them against the class)."""

    reference: str  # "module:class"
    code: str
    name: str
    runs_on: RunsOn

    def load(self) -> type[Diagnosis]:
        module, _, class_name = self.reference.partition(":")
        return getattr(importlib.import_module(module), class_name)


def _later(reference: str, code: str, name: str, runs_on: RunsOn) -> type[Diagnosis]:
    """A `_Later`, in the list below where it stands for the class it loads."""
    return cast("type[Diagnosis]", _Later(reference, code, name, runs_on))


ZeroEmbeddingRows = _later(
    "nandoctor.rules.zero_embedding_rows:ZeroEmbeddingRows", "ND101", "zero-embedding-rows", RunsOn.FILE
)
NonfiniteWeights = _later(
    "nandoctor.rules.nonfinite_weights:NonfiniteWeights", "ND102", "nonfinite-weights", RunsOn.FILE
)
CollapsedWeights = _later(
    "nandoctor.rules.collapsed_weights:CollapsedWeights", "ND103", "collapsed-weights", RunsOn.FILE
)
PaddingNotMasked = _later(
    "nandoctor.rules.padding_not_masked:PaddingNotMasked", "ND301", "padding-not-masked", RunsOn.FILE
)
MaskDropped = _later("nandoctor.rules.mask_dropped:MaskDropped", "ND302", "mask-dropped", RunsOn.FILE)
PaddingRowNotZero = _later(
    "nandoctor.rules.padding_row_not_zero:PaddingRowNotZero", "ND303", "padding-row-not-zero", RunsOn.FILE
)
UntiedEmbeddings = _later(
    "nandoctor.rules.untied_embeddings:UntiedEmbeddings", "ND401", "untied-embeddings", RunsOn.FILE
)
BrokenTie = _later("nandoctor.rules.broken_tie:BrokenTie", "ND402", "broken-tie", RunsOn.FILE)
MissingCausalMask = _later(
    "nandoctor.rules.missing_causal_mask:MissingCausalMask", "ND501", "missing-causal-mask", RunsOn.FILE
)
MalformedPositionalTable = _later(
    "nandoctor.rules.malformed_positional_table:MalformedPositionalTable",
    "ND503",
    "malformed-positional-table",
    RunsOn.FILE,
)
PositionalScaleMismatch = _later(
    "nandoctor.rules.positional_scale_mismatch:PositionalScaleMismatch",
    "ND504",
    "positional-scale-mismatch",
    RunsOn.FILE,
)
PositionalTableTooShort = _later(
    "nandoctor.rules.positional_table_too_short:PositionalTableTooShort",
    "ND505",
    "positional-table-too-short",
    RunsOn.FILE,
)
LossActivationMismatch = _later(
    "nandoctor.rules.loss_activation_mismatch:LossActivationMismatch", "ND601", "loss-activation-mismatch", RunsOn.FILE
)
EpsilonBelowResolution = _later(
    "nandoctor.rules.epsilon_below_resolution:EpsilonBelowResolution", "ND801", "epsilon-below-resolution", RunsOn.FILE
)
MissingLossScaling = _later(
    "nandoctor.rules.missing_loss_scaling:MissingLossScaling", "ND802", "missing-loss-scaling", RunsOn.FILE
)
HalfPrecisionOutput = _later(
    "nandoctor.rules.half_precision_output:HalfPrecisionOutput", "ND803", "half-precision-output", RunsOn.FILE
)
FrozenLowPrecisionUpdates = _later(
    "nandoctor.rules.frozen_low_precision_updates:FrozenLowPrecisionUpdates",
    "ND804",
    "frozen-low-precision-updates",
    RunsOn.FILE,
)
OverflowHeadroom = _later(
    "nandoctor.rules.overflow_headroom:OverflowHeadroom", "ND805", "overflow-headroom", RunsOn.FILE
)
BrokenQuantizationScales = _later(
    "nandoctor.rules.broken_quantization_scales:BrokenQuantizationScales",
    "ND806",
    "broken-quantization-scales",
    RunsOn.FILE,
)
OpaqueCode = _later("nandoctor.rules.opaque_code:OpaqueCode", "ND901", "opaque-code", RunsOn.FILE)
UnguardedDivision = _later(
    "nandoctor.live.unguarded_division:UnguardedDivision", "ND201", "unguarded-division", RunsOn.LIVE
)
SingularGradient = _later(
    "nandoctor.live.singular_gradient:SingularGradient", "ND202", "singular-gradient", RunsOn.LIVE
)
UnguardedLog = _later("nandoctor.live.unguarded_log:UnguardedLog", "ND203", "unguarded-log", RunsOn.LIVE)
CausalLeak = _later("nandoctor.live.causal_leak:CausalLeak", "ND502", "causal-leak", RunsOn.LIVE)
ShrinkingWeights = _later(
    "nandoctor.monitor.shrinking_weights:ShrinkingWeights", "ND701", "shrinking-weights", RunsOn.TRAINING
)
NonfiniteDuringTraining = _later(
    "nandoctor.monitor.nonfinite_during_training:NonfiniteDuringTraining",
    "ND702",
    "nonfinite-during-training",
    RunsOn.TRAINING,
)
ExplodingUpdates = _later(
    "nandoctor.monitor.exploding_updates:ExplodingUpdates", "ND703", "exploding-updates", RunsOn.TRAINING
)
LossScaleCollapse = _later(
    "nandoctor.monitor.loss_scale_collapse:LossScaleCollapse", "ND807", "loss-scale-collapse", RunsOn.TRAINING
)
FrozenUpdates = _later("nandoctor.monitor.frozen_updates:FrozenUpdates", "ND808", "frozen-updates", RunsOn.TRAINING)
NonfiniteInputData = _later(
    "nandoctor.monitor.nonfinite_input_data:NonfiniteInputData", "ND809", "nonfinite-input-data", RunsOn.TRAINING
)
NonfiniteMetric = _later(
    "nandoctor.monitor.nonfinite_metric:NonfiniteMetric", "ND810", "nonfinite-metric", RunsOn.TRAINING
)

# In code order. Codes are permanent: a code is never reused or renamed.
# `DIAGNOSES` is this tuple with every `_later` entry imported (see `__getattr__` below).
DIAGNOSES: tuple[type[Diagnosis], ...] = (
    ZeroEmbeddingRows,
    NonfiniteWeights,
    CollapsedWeights,
    UnguardedDivision,
    SingularGradient,
    UnguardedLog,
    PaddingNotMasked,
    MaskDropped,
    PaddingRowNotZero,
    UntiedEmbeddings,
    BrokenTie,
    MissingCausalMask,
    CausalLeak,
    MalformedPositionalTable,
    PositionalScaleMismatch,
    PositionalTableTooShort,
    LossActivationMismatch,
    ShrinkingWeights,
    NonfiniteDuringTraining,
    ExplodingUpdates,
    EpsilonBelowResolution,
    MissingLossScaling,
    HalfPrecisionOutput,
    FrozenLowPrecisionUpdates,
    OverflowHeadroom,
    BrokenQuantizationScales,
    LossScaleCollapse,
    FrozenUpdates,
    NonfiniteInputData,
    NonfiniteMetric,
    OpaqueCode,
)
_ENTRIES = cast("tuple[_Later, ...]", DIAGNOSES)
_BY_CLASS_NAME = {entry.reference.partition(":")[2]: entry for entry in _ENTRIES}
del DIAGNOSES  # from here on, `DIAGNOSES` and the classes by name are `__getattr__`'s
for _name in _BY_CLASS_NAME:
    del globals()[_name]


def __getattr__(name: str) -> Any:
    """`DIAGNOSES`, every diagnosis class in code order, and each diagnosis by class name:
    imported on first use."""
    if name == "DIAGNOSES":
        loaded = tuple(entry.load() for entry in _ENTRIES)
        globals()["DIAGNOSES"] = loaded
        return loaded
    if name in _BY_CLASS_NAME:
        return _BY_CLASS_NAME[name].load()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_SELECTOR_HELP = "a code (ND101), a family or code prefix (ND1), a name (zero-embedding-rows) or ALL"


def find(code_or_name: str) -> type[Diagnosis] | None:
    """The diagnosis with this code or name, or None."""
    entry = _entry(code_or_name)
    return entry.load() if entry is not None else None


def _entry(code_or_name: str) -> _Later | None:
    key = code_or_name.strip()
    return next((d for d in _ENTRIES if key.upper() == d.code or key.lower() == d.name), None)


def diagnoses_running_on(runs_on: RunsOn) -> list[type[Diagnosis]]:
    return [entry.load() for entry in _ENTRIES if entry.runs_on is runs_on]


def codes_running_on(runs_on: RunsOn) -> list[str]:
    """`diagnoses_running_on`'s codes, without importing a diagnosis."""
    return [entry.code for entry in _ENTRIES if entry.runs_on is runs_on]


def split_selectors(values: str | Iterable[str] | None) -> list[str]:
    """`["ND1,ND601", "opaque-code"]` -> `["ND1", "ND601", "opaque-code"]`."""
    if isinstance(values, str):
        values = [values]
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


def codes_matching(selector: str) -> frozenset[str]:
    """The codes a selector names; `ValueError` for one that names none."""
    key = selector.strip()
    if key.upper() == "ALL":
        return frozenset(d.code for d in _ENTRIES)
    named = _entry(key)
    if named is not None:
        return frozenset({named.code})
    prefix = key.upper()
    family = frozenset(d.code for d in _ENTRIES if prefix.startswith("ND") and d.code.startswith(prefix))
    if family:
        return family
    raise ValueError(f"Unknown rule selector. Expected {_SELECTOR_HELP}. Received: {selector!r}")


@dataclass(frozen=True)
class Suppression:
    """Findings of `codes` on layers matching `layer` (a glob; `*` is every layer)."""

    codes: frozenset[str]
    layer: str = "*"

    def covers(self, finding: Finding) -> bool:
        return finding.code in self.codes and (
            self.layer == "*" or fnmatch.fnmatchcase(finding.layer or "", self.layer)
        )


@dataclass(frozen=True)
class Selection:
    """Which diagnoses run, and which of their findings are suppressed."""

    codes: frozenset[str]
    suppressions: tuple[Suppression, ...] = ()
    # glob of a path -> suppressions for the files it matches ([tool.nandoctor.per-file-ignores]).
    per_file: tuple[tuple[str, tuple[Suppression, ...]], ...] = field(default=())

    @classmethod
    def resolve(
        cls,
        select: str | Iterable[str] | None = None,
        ignore: str | Iterable[str] | None = None,
        per_file_ignores: Mapping[str, str | Iterable[str]] | None = None,
    ) -> Selection:
        chosen = split_selectors(select)
        codes = frozenset().union(*(codes_matching(s) for s in chosen)) if chosen else codes_matching("ALL")
        suppressions = []
        for selector in split_selectors(ignore):
            ignored, layer = _codes_and_layer(selector)
            if layer is None:
                codes -= ignored
            else:
                suppressions.append(Suppression(ignored, layer))
        per_file = tuple(
            (
                pattern,
                tuple(
                    Suppression(codes_matching(name), layer or "*")
                    for name, layer in map(_name_and_layer, split_selectors(selectors))
                ),
            )
            for pattern, selectors in (per_file_ignores or {}).items()
        )
        return cls(codes, tuple(suppressions), per_file)

    def __contains__(self, code: str) -> bool:
        return code in self.codes

    def any_of(self, diagnoses: Iterable[type[Diagnosis]]) -> bool:
        return any(d.code in self.codes for d in diagnoses)

    def instances(self, runs_on: RunsOn, options: Mapping[str, Mapping[str, Any]] | None = None) -> list[Any]:
        """The selected diagnoses that run on `runs_on`, built with their options, in code order."""
        settings = resolve_options(options)
        return [d(**settings.get(d, {})) for d in diagnoses_running_on(runs_on) if d.code in self.codes]

    def filter(self, findings: Iterable[Finding], path: str | None = None) -> tuple[list[Finding], dict[str, int]]:
        """(the findings kept, how many of each code were suppressed) for a file at `path`."""
        rules = self.suppressions + self._for_path(path)
        kept: list[Finding] = []
        suppressed: dict[str, int] = {}
        for finding in findings:
            if finding.code not in self.codes:
                continue
            if any(rule.covers(finding) for rule in rules):
                suppressed[finding.code] = suppressed.get(finding.code, 0) + 1
            else:
                kept.append(finding)
        return kept, suppressed

    def suppresses_in(self, path: str) -> bool:
        """Some ignore applies to the findings of the file at `path` (which `filter` drops)."""
        return bool(self.suppressions) or bool(self._for_path(path))

    def _for_path(self, path: str | None) -> tuple[Suppression, ...]:
        if path is None:
            return ()
        posix = path.replace("\\", "/")
        return tuple(
            rule
            for pattern, rules in self.per_file
            if fnmatch.fnmatchcase(posix, pattern) or fnmatch.fnmatchcase(posix.rsplit("/", 1)[-1], pattern)
            for rule in rules
        )


def _codes_and_layer(selector: str) -> tuple[frozenset[str], str | None]:
    """`ND301:emb*` -> (its codes, "emb*"); `ND301` -> (its codes, None)."""
    name, layer = _name_and_layer(selector)
    return codes_matching(name), layer


def _name_and_layer(selector: str) -> tuple[str, str | None]:
    """`ND301:emb*` -> ("ND301", "emb*"); `ND301` -> ("ND301", None)."""
    name, separator, layer = selector.partition(":")
    if separator and not layer.strip():
        raise ValueError(f"A layer ignore names a layer after the colon (ND301:embedding). Received: {selector!r}")
    return name, layer.strip() if separator else None


def merge_options(*tables: Mapping[str, Mapping[str, Any]] | None) -> dict[str, Any]:
    """Option tables keyed by code or name, as one table keyed by code: where two set the same
    option of a diagnosis, the later wins (a project's settings, then the caller's). Keys that
    name no diagnosis are kept for `resolve_options` to refuse."""
    merged: dict[str, Any] = {}
    for table in tables:
        for key, values in (table or {}).items():
            entry = _entry(key) if isinstance(key, str) else None
            code = entry.code if entry is not None else key
            earlier = merged.get(code)
            if isinstance(earlier, Mapping) and isinstance(values, Mapping):
                merged[code] = {**earlier, **values}
            else:
                merged[code] = values
    return merged


def resolve_options(options: Mapping[str, Mapping[str, Any]] | None) -> dict[type[Diagnosis], dict[str, Any]]:
    """Options keyed by code or name, each checked against its diagnosis."""
    settings: dict[type[Diagnosis], dict[str, Any]] = {}
    for key, values in (options or {}).items():
        diagnosis = find(key)
        if diagnosis is None:
            raise ValueError(f"Options given for an unknown rule. Expected a code or a name. Received: {key!r}")
        if not isinstance(values, Mapping):
            raise ValueError(
                f"Options of {diagnosis.code} ({diagnosis.name}) must be a table of names and values. "
                f"Received: {values!r}"
            )
        settings[diagnosis] = diagnosis.checked_options(values)
    return settings
