"""The catalogue follows the design: permanent codes, one name each, one list for every way in."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from nandoctor import catalogue
from nandoctor.catalogue import (
    DIAGNOSES,
    Selection,
    codes_matching,
    diagnoses_running_on,
    find,
)
from nandoctor.diagnosis import RunsOn
from tests.conftest import ROOT

# The codes of the design's catalogue: a code is never reused or renamed (new ones are added).
PERMANENT = {
    "ND101": "zero-embedding-rows",
    "ND102": "nonfinite-weights",
    "ND103": "collapsed-weights",
    "ND201": "unguarded-division",
    "ND202": "singular-gradient",
    "ND203": "unguarded-log",
    "ND301": "padding-not-masked",
    "ND302": "mask-dropped",
    "ND303": "padding-row-not-zero",
    "ND401": "untied-embeddings",
    "ND402": "broken-tie",
    "ND501": "missing-causal-mask",
    "ND502": "causal-leak",
    "ND503": "malformed-positional-table",
    "ND504": "positional-scale-mismatch",
    "ND505": "positional-table-too-short",
    "ND601": "loss-activation-mismatch",
    "ND701": "shrinking-weights",
    "ND702": "nonfinite-during-training",
    "ND703": "exploding-updates",
    "ND901": "opaque-code",
}


def test_every_permanent_code_keeps_its_name():
    catalogue = {diagnosis.code: diagnosis.name for diagnosis in DIAGNOSES}
    assert {code: catalogue.get(code) for code in PERMANENT} == PERMANENT


def test_codes_and_names_are_unique_and_in_code_order():
    codes = [diagnosis.code for diagnosis in DIAGNOSES]
    names = [diagnosis.name for diagnosis in DIAGNOSES]
    assert codes == sorted(codes) and len(set(codes)) == len(codes) and len(set(names)) == len(names)


def test_each_diagnosis_runs_in_one_declared_place():
    kinds = {diagnosis.code: diagnosis.runs_on for diagnosis in DIAGNOSES}
    assert {code for code, kind in kinds.items() if kind is RunsOn.LIVE} == {"ND201", "ND202", "ND203", "ND502"}
    assert {code for code, kind in kinds.items() if kind is RunsOn.TRAINING} == {
        "ND701",
        "ND702",
        "ND703",
        "ND807",
        "ND808",
        "ND809",
        "ND810",
    }
    assert len(diagnoses_running_on(RunsOn.FILE)) == len(DIAGNOSES) - 11


@pytest.mark.parametrize("diagnosis", DIAGNOSES, ids=lambda d: d.code)
def test_every_code_family_and_name_selects(diagnosis):
    assert find(diagnosis.code) is diagnosis and find(diagnosis.name) is diagnosis
    assert codes_matching(diagnosis.name) == {diagnosis.code}
    assert diagnosis.code in codes_matching(diagnosis.code[:3])
    assert diagnosis.code not in Selection.resolve(ignore=[diagnosis.name])


def test_unknown_selectors_say_what_is_accepted():
    with pytest.raises(ValueError, match=r"Expected a code .* Received: 'ND0'"):
        Selection.resolve(select=["ND0"])
    with pytest.raises(ValueError, match="Received: 'zero-rows'"):
        Selection.resolve(ignore=["zero-rows"])


def test_every_live_check_and_detector_raises_only_catalogued_diagnoses():
    from nandoctor.live import LIVE_CHECKS

    for check in LIVE_CHECKS:
        assert check.raises and all(d in DIAGNOSES and d.runs_on in (RunsOn.LIVE, RunsOn.FILE) for d in check.raises)


def test_readme_names_every_family():
    readme = (ROOT / "README.md").read_text()
    for family in sorted({diagnosis.code[:3] for diagnosis in DIAGNOSES}):
        assert f"| {family} |" in readme


def test_every_entry_states_what_its_class_says():
    later = catalogue._ENTRIES
    assert {entry.runs_on for entry in later} == {RunsOn.FILE, RunsOn.LIVE, RunsOn.TRAINING}
    for entry in later:
        loaded = entry.load()
        assert (entry.code, entry.name, entry.runs_on) == (loaded.code, loaded.name, loaded.runs_on)
        assert entry.reference == f"{loaded.__module__}:{loaded.__name__}"
        assert getattr(catalogue, loaded.__name__) is loaded  # `from nandoctor.catalogue import CausalLeak` as before
    assert [diagnosis.code for diagnosis in DIAGNOSES] == [entry.code for entry in catalogue._ENTRIES]


# The CLI's scan in a fresh process, selecting and ignoring live and training diagnoses by
# code, family and name; then the modules it imported.
_SCAN_THEN_LIST_IMPORTS = textwrap.dedent(
    """
    import sys
    from nandoctor.cli import main
    try:
        main(sys.argv[1:], prog_name="nandoctor")
    except SystemExit as exit:
        print("EXIT", exit.code)
    print("IMPORTED", sorted(m for m in sys.modules if m.startswith(("nandoctor.live", "nandoctor.monitor"))
                             or m.split(".")[0] in ("tensorflow", "keras", "tf_keras")))
    """
)


def test_the_static_scan_imports_no_live_check_training_detector_or_keras(tmp_path):
    np.save(tmp_path / "table.npy", np.ones((4, 3), np.float32))
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            _SCAN_THEN_LIST_IMPORTS,
            "scan",
            str(tmp_path / "table.npy"),
            "--no-cache",
            "--select",
            "ND1,ND5,ND7,unguarded-log",
            "--ignore",
            "causal-leak,ND702",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert "EXIT 0" in child.stdout and "IMPORTED []" in child.stdout, child.stdout + child.stderr
