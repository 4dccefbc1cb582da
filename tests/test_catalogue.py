"""The rule catalogue follows DESIGN.md: permanent codes, one name each, families listed."""

from nandoctor.rules import RULES
from tests.conftest import ROOT

# DESIGN.md's catalogue: a code is never reused or renamed.
CATALOGUE = {
    "ND101": "zero-embedding-rows", "ND102": "nonfinite-weights", "ND103": "collapsed-weights",
    "ND301": "padding-not-masked", "ND302": "mask-dropped", "ND303": "padding-row-not-zero",
    "ND401": "untied-embeddings", "ND402": "broken-tie",
    "ND501": "missing-causal-mask", "ND503": "malformed-positional-table",
    "ND504": "positional-scale-mismatch", "ND505": "positional-table-too-short",
    "ND601": "loss-activation-mismatch", "ND901": "opaque-code",
}


def test_codes_and_names_are_those_of_the_design():
    assert {rule.code: rule.name for rule in RULES} == CATALOGUE


def test_rules_are_registered_in_code_order():
    assert [rule.code for rule in RULES] == sorted(rule.code for rule in RULES)


def test_readme_counts_the_rules_and_names_every_family():
    from nandoctor.probes import LIVE_RULES

    readme = (ROOT / "README.md").read_text()
    assert "Fourteen static rules, four that only a live model can raise" in readme
    assert (len(RULES), len(LIVE_RULES)) == (14, 4)
    for family in sorted({rule.code[:3] for rule in [*RULES, *LIVE_RULES]}):
        assert f"| {family} |" in readme
