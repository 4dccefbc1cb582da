"""Models that other people wrote: every zoo file reads, `check()` never crashes, nothing fires
at warning or above outside what the entry expects or allows, and every expected fault is found."""

from __future__ import annotations

import json

import pytest

import nandoctor
from fixtures.zoo import ZOO
from tests.conftest import run_cli

SERIOUS = ("warning", "error")


def serious_codes(findings) -> set[str]:
    return {
        finding["code"] if isinstance(finding, dict) else finding.code
        for finding in findings
        if (finding["severity"] if isinstance(finding, dict) else finding.severity) in SERIOUS
    }


def misjudgements(entry, findings, *, live: bool) -> set[str]:
    """The codes on which nandoctor disagrees with the entry's expert labels: findings at warning
    or above that the entry neither expects nor allows, and expected codes it did not find (a
    live-only code counts only where the model is live)."""
    found = serious_codes(findings)
    must_find = set(entry.expected) if live else set(entry.expected) - set(entry.live_only)
    return (found - set(entry.expected) - set(entry.allowed)) | (must_find - found)


def files_of_zoo():
    return [pytest.param(entry, name, id=name) for entry in ZOO for name in entry.file_names()]


@pytest.mark.parametrize(("entry", "name"), files_of_zoo())
def test_every_zoo_file_reads_and_says_what_it_must(zoo_dir, entry, name):
    result = run_cli("scan", "--format", "json", zoo_dir / name)
    assert result.exit_code in (0, 1), result.stdout
    (scanned,) = json.loads(result.stdout)["files"]
    assert scanned["status"] == "scanned", scanned["error"]
    assert misjudgements(entry, scanned["findings"], live=False) <= set(entry.misjudged), scanned["findings"]


@pytest.mark.parametrize("entry", [pytest.param(entry, id=entry.id) for entry in ZOO])
def test_check_runs_every_probe_on_every_zoo_model_and_says_what_it_must(keras, zoo_dir, entry):
    if entry.api == "tf_keras":
        import tf_keras

        tf_keras.utils.set_random_seed(0)
    keras.utils.set_random_seed(0)
    report = nandoctor.check(entry.build(), sample=entry.live_sample())
    (result,) = report.files
    assert [note for note in result.notes if "could not run" in note] == []
    wrong = misjudgements(entry, report.findings, live=True)
    for scanned in nandoctor.scan([zoo_dir / name for name in entry.file_names()]).files:
        wrong |= misjudgements(entry, scanned.findings, live=False)
    # Exactly the known misjudgements: a new one fails, and so does one that a mended rule no longer makes.
    assert wrong == set(entry.misjudged), [(f.code, f.severity, f.layer, f.message) for f in report.findings]


def test_the_manifest_names_every_model_with_its_source_files_and_expectations(manifest, zoo_dir):
    assert set(manifest) == {entry.id for entry in ZOO}
    for entry in manifest.values():
        assert entry["source"] and entry["files"] and all((zoo_dir / name).is_file() for name in entry["files"])
        assert set(entry["live_only"]) <= set(entry["expected"]) and set(entry["why"]) == set(entry["expected"])
        assert all(reason for reason in [*entry["allowed"].values(), *entry["misjudged"].values()])


def test_the_zoo_holds_the_architectures_it_promises(manifest):
    by_family = {}
    for entry in manifest.values():
        by_family.setdefault(entry["family"], []).append(entry)
    hub = {entry["id"] for entry in by_family["keras_hub"]}
    causal_lms = [i for i in hub if i.endswith(("causal_lm", "causal_lm_tied", "causal_lm_untied"))]
    assert len(hub) >= 75 and len(causal_lms) >= 25
    assert {
        "keras_hub_llama_causal_lm_untied",
        "keras_hub_gpt2_causal_lm",
        "keras_hub_bert_masked_lm",
        "keras_hub_bert_text_classifier",
        "keras_hub_t5_backbone",
        "keras_hub_bart_seq2seq_lm",
        "keras_hub_vit_image_classifier",
        "keras_hub_gemma3_causal_lm",
        "keras_hub_mixtral_causal_lm",
        "keras_hub_xlm_roberta_masked_lm",
        "keras_hub_t5_seq2seq_lm",
        "keras_hub_whisper_backbone",
        "keras_hub_efficientnet_image_classifier",
        "keras_hub_deeplab_v3_image_segmenter",
        "keras_hub_retinanet_object_detector",
        "keras_hub_clip_backbone",
        "keras_hub_pali_gemma_causal_lm",
    } <= hub
    assert len(by_family["applications"]) >= 6 and len(by_family["keras_io"]) >= 30
    assert len(by_family["keras2"]) >= 5 and all(entry["files"][0].endswith(".h5") for entry in by_family["keras2"])
    assert all(
        {name.rsplit(".", 1)[-1] for name in entry["files"]} == {"keras", "h5"} for entry in by_family["prescribed"]
    )


@pytest.mark.parametrize(
    "entry",
    [pytest.param(entry, id=entry.id) for entry in ZOO if entry.family == "keras_io" and "keras" in entry.files],
)
def test_scan_trust_loads_every_keras_io_example_with_its_module(zoo_dir, entry):
    module = f"fixtures.zoo.keras_io.{entry.id.removeprefix('keras_io_')}"
    result = run_cli("scan", "--trust", "--custom-objects", module, "--format", "json", zoo_dir / entry.file_names()[0])
    (scanned,) = json.loads(result.stdout)["files"]
    if entry.reload_fails:  # the example's own code: the one-line reason, exit 2
        assert result.exit_code == 2 and scanned["error"].startswith("cannot load with Keras")
        return
    assert result.exit_code in (0, 1), result.stdout
    assert scanned["status"] == "scanned", scanned["error"]
    assert serious_codes(scanned["findings"]) <= set(entry.expected) | set(entry.allowed) | set(entry.misjudged)


def test_fix_on_the_zoo_rewrites_only_what_it_found_and_every_fixed_file_loads_and_runs(keras, zoo_dir, tmp_path):
    import importlib
    import pkgutil

    import numpy as np

    import fixtures.zoo.keras_io
    import fixtures.zoo.variants
    import nandoctor.layers  # noqa: F401  (a fix may write MaskedEmbedding)

    for package in (fixtures.zoo.keras_io, fixtures.zoo.variants):  # the zoo's own classes, registered
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package.__name__}.{module.name}")
    importlib.import_module("keras_hub")

    out = tmp_path / "fixed"
    out.mkdir()
    result = run_cli("fix", zoo_dir, "-o", out, "--unsafe-fixes", "--format", "json")
    assert result.exit_code in (0, 1), result.stderr
    reports = {report["path"].rsplit("/", 1)[-1]: report for report in json.loads(result.stdout)["files"]}
    assert all(report["status"] in ("scanned", "skipped") for report in reports.values())
    fixed = {name: report for name, report in reports.items() if report["fixed"]}
    assert sorted(p.name for p in out.iterdir()) == sorted(fixed)
    scanned = json.loads(run_cli("scan", zoo_dir, "--format", "json", "--exit-zero").stdout)["files"]
    found = {report["path"].rsplit("/", 1)[-1]: {f["code"] for f in report["findings"]} for report in scanned}
    for name, report in fixed.items():
        assert {f["code"] for f in report["fixed"]} <= found[name], name
    rng = np.random.default_rng(0)
    for name in fixed:
        try:
            keras.saving.load_model(zoo_dir / name, compile=False)
        except Exception:  # Keras cannot load the original either (its legacy writer, the example's own code)
            continue
        model = keras.saving.load_model(out / name, compile=False)
        inputs = [
            rng.integers(1, 10, size=(2, *(d or 64 for d in x.shape[1:]))).astype(x.dtype)
            if "int" in x.dtype
            else rng.normal(size=(2, *(d or 64 for d in x.shape[1:]))).astype(x.dtype)
            for x in model.inputs
        ]
        outputs = model.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0)
        assert all(np.isfinite(np.asarray(o)).all() for o in (outputs if isinstance(outputs, list) else [outputs])), (
            name
        )
