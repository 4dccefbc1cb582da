"""The fixes are documented where users look: each rule's page and docs/cli.md."""

import re

from nandoctor.catalogue import DIAGNOSES
from nandoctor.docgen import rule_page
from nandoctor.fix import PRESCRIPTIONS
from tests.conftest import ROOT


def test_every_rule_page_says_whether_its_fix_is_safe_unsafe_or_manual():
    for diagnosis in DIAGNOSES:
        line = next(line for line in rule_page(diagnosis).splitlines() if line.startswith("`nandoctor fix`:"))
        kinds = set(re.findall(r"\b(safe|unsafe|manual):", line))
        expected = {p.safety.value for p in PRESCRIPTIONS if diagnosis.code in p.codes} or {"manual"}
        assert kinds == expected, (diagnosis.code, line)


def test_the_cli_page_lists_every_fix_with_its_safety():
    table = ROOT.joinpath("docs", "cli.md").read_text().split("## `nandoctor fix PATH...`")[1].split("\n## ")[0]
    rows = [line for line in table.splitlines() if line.startswith("| ND")]
    for prescription in PRESCRIPTIONS:
        assert any(
            all(code in row for code in prescription.codes) and row.rstrip(" |").endswith(prescription.safety.value)
            for row in rows
        ), prescription.__name__
