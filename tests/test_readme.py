"""The README's tour shows real output: re-run its command and compare."""

import re
import shlex

from tests.conftest import ROOT, run_cli


def test_readme_tour_output_is_what_the_scan_prints(monkeypatch):
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```console\n\$ (nandoctor .*?)\n(.*?)\$ echo \$\?\n(\d+)\n```", readme, re.DOTALL)
    command, shown, exit_code = block.group(1), block.group(2), int(block.group(3))
    monkeypatch.chdir(ROOT)
    result = run_cli(*shlex.split(command)[1:], expected_exit=exit_code)
    assert result.stdout == shown


def test_readme_starts_with_the_two_commands():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert lines[2:6] == ["```sh", lines[3], lines[4], "```"]
    assert lines[3].startswith("make demo") and lines[4].startswith("make test")
