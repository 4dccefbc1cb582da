"""The bundled fixtures: what `make demo` shows, and the clean models that must stay quiet."""

import pytest

import nandoctor
from tests.conftest import FIXTURES, run_cli

EXPECTED = {
    "seed_a_memory_network.keras": ["ND601", "ND901", "ND901"],
    "seed_a_memory_network_keras2.h5": ["ND601", "ND901", "ND901"],
    "seed_b_untied_language_model.keras": [],  # ND401 untied-embeddings comes with the structural rules
    "seed_c_zero_rows_cosine.keras": ["ND101", "ND101", "ND901", "ND901", "ND901"],
    "seed_d_padding_flatten.keras": [],  # ND301 padding-not-masked comes with the structural rules
    "diverged_checkpoint.keras": ["ND102"],
    "collapsed_checkpoint.keras": ["ND103", "ND103"],
    "softmax_single_unit_keras2.h5": ["ND601"],
    "gensim_vectors.vec": ["ND101"],
    "gensim_vectors.bin": ["ND101"],
    "entity_tables.npz": ["ND101"],
}


@pytest.mark.parametrize("name, codes", EXPECTED.items())
def test_each_broken_fixture_gives_its_findings(name, codes):
    report = nandoctor.scan(str(FIXTURES / "broken" / name))
    assert report.errors == []
    assert sorted(f.code for f in report.findings) == codes


def test_every_broken_fixture_is_listed():
    assert sorted(path.name for path in (FIXTURES / "broken").iterdir()) == sorted(EXPECTED)


def test_seed_c_zero_rows_reach_the_hand_written_cosine():
    report = nandoctor.scan(str(FIXTURES / "broken" / "seed_c_zero_rows_cosine.keras"))
    by_layer = {f.layer: f for f in report.findings if f.code == "ND101"}
    assert by_layer["word_emb"].severity == "error" and by_layer["word_emb"].details["feeds"] == "cos_pos"
    assert by_layer["word_emb"].details["count"] == 120


def test_clean_fixtures_give_no_warning_or_error():
    result = run_cli("scan", FIXTURES / "clean", "--fail-on", "warning", expected_exit=0)
    assert "No findings in 13 files." in result.stdout


def test_fixtures_stay_small():
    total = sum(path.stat().st_size for path in FIXTURES.rglob("*") if path.is_file())
    assert total < 2 * 1024 * 1024
