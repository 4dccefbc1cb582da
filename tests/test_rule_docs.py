"""Rule documentation is complete, generated, and its examples are executed."""

import pytest

import nandoctor
from nandoctor import docgen
from nandoctor.catalogue import DIAGNOSES, diagnoses_running_on
from nandoctor.diagnosis import OPTIONAL_SECTIONS, REQUIRED_SECTIONS, RunsOn

RULES = diagnoses_running_on(RunsOn.FILE)


@pytest.mark.parametrize("rule", DIAGNOSES, ids=lambda rule: rule.code)
def test_docstring_has_the_required_sections_in_order(rule):
    headings = list(rule.sections())
    assert headings[: len(REQUIRED_SECTIONS)] == list(REQUIRED_SECTIONS)
    allowed_tail = [h for h in OPTIONAL_SECTIONS if h in headings]
    assert headings[len(REQUIRED_SECTIONS) :] == allowed_tail
    assert rule.summary().endswith(".") and rule.summary().count(". ") == 0


@pytest.mark.parametrize("rule", DIAGNOSES, ids=lambda rule: rule.code)
def test_every_diagnosis_says_what_it_needs_to_be_sure(rule):
    assert rule.evidence.startswith(("the ", "a live model", "training")) and rule.evidence.endswith(".")
    assert f"Needs, to be sure: {rule.evidence}" in docgen.rule_page(rule)


@pytest.mark.parametrize("rule", DIAGNOSES, ids=lambda rule: rule.code)
def test_codes_and_names_follow_the_catalogue(rule):
    assert rule.code.startswith("ND") and len(rule.code) == 5
    assert rule.name == rule.name.lower() and " " not in rule.name


def build_example(code: str, tmp_path, name: str) -> str:
    namespace: dict = {}
    exec(compile(code, f"<{name}>", "exec"), namespace)
    path = tmp_path / f"{name}.keras"
    namespace["model"].save(path)
    return str(path)


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.code)
def test_example_fires_exactly_this_rule(keras, tmp_path, rule):
    code = rule.code_block("Example")
    report = nandoctor.scan(build_example(code, tmp_path, "example"))
    # An example that must define a custom layer (a hand-written tie) is also code the
    # scan cannot see, which ND901 names; no other rule may fire.
    companions = {"ND901"} if "class " in code else set()
    assert {finding.code for finding in report.findings} - companions == {rule.code}


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.code)
def test_use_instead_does_not_fire_it(keras, tmp_path, rule):
    report = nandoctor.scan(build_example(rule.code_block("Use instead"), tmp_path, "use_instead"))
    assert [finding.code for finding in report.findings] == []


def test_generated_rule_docs_are_up_to_date():
    stale = docgen.stale_pages()
    assert stale == [], f"run `python -m nandoctor.docgen`; stale: {stale}"


def live_rules():
    return diagnoses_running_on(RunsOn.LIVE)


def live_example(code: str):
    namespace: dict = {}
    exec(compile(code, "<live example>", "exec"), namespace)
    return namespace["model"]


@pytest.mark.parametrize("rule", live_rules(), ids=lambda rule: rule.code)
def test_live_rules_are_documented_like_the_static_ones(rule):
    test_docstring_has_the_required_sections_in_order(rule)
    test_codes_and_names_follow_the_catalogue(rule)


@pytest.mark.parametrize("rule", live_rules(), ids=lambda rule: rule.code)
def test_live_examples_fire_on_a_live_model_and_their_fixes_do_not(keras, rule):
    assert rule.code in {f.code for f in nandoctor.check(live_example(rule.code_block("Example"))).findings}
    fixed = nandoctor.check(live_example(rule.code_block("Use instead")))
    assert [f.code for f in fixed.findings if f.severity != "info"] == []
