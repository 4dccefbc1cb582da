"""The rough edges a new user hit, each pinned by a test that failed before its fix."""

import json
import os
import subprocess
import sys
import zipfile

import pytest

import nandoctor
from tests.conftest import FIXTURES, ROOT, run_cli

RELU_OUTPUT = FIXTURES / "broken" / "seed_a_memory_network.keras"


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def nandoctor_process(*args, cwd=None, timeout=120):
    """The installed command in a fresh process: real stderr, and a hang is a failure."""
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "80"}
    return subprocess.run(
        [sys.executable, "-m", "nandoctor", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_plot_into_a_missing_folder_is_one_line_exit_2(tmp_path):
    log = tmp_path / "nandoctor-health.jsonl"
    log.write_text(json.dumps({"step": 0, "variables": [{"layer": "d", "norm": 1.0}], "findings": []}) + "\n")
    result = run_cli("plot", log, "-o", tmp_path / "no" / "such" / "dir" / "x.png", expected_exit=2)
    assert "cannot write" in one_line(result.stderr)


def test_plot_of_a_model_file_is_one_line_exit_2():
    result = run_cli("plot", RELU_OUTPUT, expected_exit=2)
    assert "is not a nandoctor health log" in one_line(result.stderr)


def test_custom_objects_that_cannot_be_imported_are_one_line_exit_2():
    result = run_cli("scan", "--trust", "--custom-objects", "no_such_module", RELU_OUTPUT, expected_exit=2)
    assert "no_such_module" in one_line(result.stderr)


@pytest.mark.parametrize("inside_a_directory", [False, True])
def test_a_fifo_named_like_a_model_never_hangs_the_scan(tmp_path, inside_a_directory):
    fifo = tmp_path / "f.keras"
    os.mkfifo(fifo)
    target = tmp_path if inside_a_directory else fifo
    done = nandoctor_process("scan", target, RELU_OUTPUT, "--format", "json", timeout=60)
    report = json.loads(done.stdout)
    statuses = {entry["path"]: entry["status"] for entry in report["files"]}
    assert statuses[str(RELU_OUTPUT)] == "scanned"
    assert statuses[str(fifo)] == ("skipped" if inside_a_directory else "error")
    if not inside_a_directory:
        assert done.returncode == 2 and "named pipe" in one_line(done.stderr)


def test_a_wrong_option_type_in_settings_is_one_usage_error_about_pyproject(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[tool.nandoctor.options.collapsed-weights]\ntiny = "abc"\n')
    monkeypatch.chdir(tmp_path)
    line = one_line(run_cli("scan", RELU_OUTPUT, expected_exit=2).stderr)
    assert "pyproject.toml" in line and "tiny" in line and "Received: tiny='abc'" in line


def test_a_missing_file_says_so_once_without_repeating_its_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_cli("scan", "nope.keras", expected_exit=2)
    assert one_line(result.stderr) == "nandoctor: error: nope.keras: no such file or directory"
    assert result.stdout.strip() == "Nothing was scanned. 1 file could not be read."
    report = json.loads(run_cli("scan", "nope.keras", "--format", "json").stdout)
    assert report["summary"]["unreadable"] == 1


def test_a_file_named_twice_or_reached_twice_is_scanned_once():
    report = nandoctor.scan([RELU_OUTPUT, RELU_OUTPUT, RELU_OUTPUT.parent])
    assert [r.path for r in report.files].count(str(RELU_OUTPUT)) == 1


def test_a_keras_file_without_weights_says_they_were_absent(tmp_path):
    stripped = tmp_path / "config_only.keras"
    with zipfile.ZipFile(RELU_OUTPUT) as source, zipfile.ZipFile(stripped, "w") as target:
        for name in source.namelist():
            if name != "model.weights.h5":
                target.writestr(name, source.read(name))
    (result,) = nandoctor.scan(stripped).files
    assert result.status == "scanned" and "ND601" in {f.code for f in result.findings}
    assert result.notes == ["the archive holds no model.weights.h5: the config was checked, the weights could not be"]
    assert "note: the archive holds no model.weights.h5" in run_cli("scan", stripped).stdout


def test_a_report_prints_as_text_and_displays_as_a_table_in_a_notebook(keras):
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="softmax", name="single")(inputs))
    report = nandoctor.check(model, probes=False)
    assert str(report).startswith("<model ") and "ND601" in str(report) and "fix:" in str(report)
    html = report._repr_html_()
    assert html.startswith("<div><table") and "<b>ND601</b>" in html and "single" in html


def test_rule_page_is_rendered_on_a_terminal_and_markdown_when_piped(monkeypatch):
    from nandoctor import cli

    piped = run_cli("rule", "ND601", expected_exit=0).stdout
    assert piped.startswith("# loss-activation-mismatch (ND601)") and "```python" in piped
    monkeypatch.setattr(cli, "stdout_is_terminal", lambda: True)
    rendered = run_cli("rule", "ND601", expected_exit=0).stdout
    assert "loss-activation-mismatch (ND601)" in rendered and "# loss" not in rendered and "```" not in rendered


def test_long_layer_names_are_printed_whole(tmp_path, keras):
    inner = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(1, activation="softmax", name="a_rather_long_output_layer_name")],
        name="gpt2_causal_lm_backbone_with_a_long_name",
    )
    inputs = keras.Input((4,))
    model = keras.Model(inputs, inner(inputs))
    path = tmp_path / "long.keras"
    model.save(path)
    out = run_cli("scan", path).stdout
    assert "gpt2_causal_lm_backbone_with_a_long_name/a_rather_long_output_layer_name" in out


def test_one_opaque_finding_per_custom_class_listing_its_layers(tmp_path, keras):
    from tests.live.leaky_layers import ForgetfulAttention

    tokens = keras.Input((8,), dtype="int32")
    x = keras.layers.Embedding(40, 16, mask_zero=True)(tokens)
    for index in range(5):
        x = ForgetfulAttention(name=f"block_{index}")(x)
    path = tmp_path / "blocks.keras"
    keras.Model(tokens, keras.layers.Dense(40)(x)).save(path)
    opaque = [f for f in nandoctor.scan(path).findings if f.code == "ND901"]
    assert len(opaque) == 1
    assert opaque[0].details["layers"] == [f"block_{i}" for i in range(5)]
    assert "5 layers: 'block_0', 'block_1', 'block_2', 'block_3' and 1 more" in opaque[0].message


def test_generated_layer_docs_end_their_sentences():
    text = (ROOT / "docs" / "layers.md").read_text()
    functions = text.split("## Functions", 1)[1]
    for line in filter(None, functions.strip().splitlines()):
        assert line.rstrip().endswith((".", ")")), line


def test_docs_tell_the_field_reports_themselves():
    for page in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *(ROOT / "nandoctor").rglob("*.py")]:
        assert "SEEDS" not in page.read_text(), page
    assert "## C. Weights shrinking to NaN" in (ROOT / "docs" / "field-reports.md").read_text()


@pytest.mark.parametrize(
    "choice, env, expected",
    [
        ("auto", {}, False),
        ("auto", {"FORCE_COLOR": "1"}, True),
        ("always", {"NO_COLOR": "1"}, True),
        ("never", {"FORCE_COLOR": "1"}, False),
        ("auto", {"NO_COLOR": "1", "FORCE_COLOR": "1"}, False),
    ],
)
def test_color_follows_the_flag_then_no_color_then_force_color(monkeypatch, choice, env, expected):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    out = run_cli("scan", RELU_OUTPUT, "--color", choice).stdout
    assert ("\x1b[" in out) == expected


def test_per_file_and_per_layer_ignores_from_settings_are_counted(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool.nandoctor.per-file-ignores]\n"seed_a_*.keras" = ["ND601"]\n')
    report = json.loads(run_cli("scan", RELU_OUTPUT, "--format", "json", "--fail-on", "info").stdout)
    file = report["files"][0]
    assert [f["code"] for f in file["findings"]] == ["ND901"] and file["suppressed"] == {"ND601": 1}
    assert report["summary"]["suppressed"] == 1
    (tmp_path / "pyproject.toml").write_text('[tool.nandoctor.per-layer-ignores]\n"temporal_*" = ["opaque-code"]\n')
    file = json.loads(run_cli("scan", RELU_OUTPUT, "--format", "json").stdout)["files"][0]
    assert [f["code"] for f in file["findings"]] == ["ND601"] and file["suppressed"] == {"ND901": 1}
    # --ignore adds to the settings: ND601 on next_word, and ND901 from the per-layer table.
    assert "No findings in 1 file. 2 suppressed." in run_cli("scan", RELU_OUTPUT, "--ignore", "ND601:next_*").stdout


def test_the_command_writes_its_whole_report_and_exits_with_its_code(tmp_path):
    broken = nandoctor_process("scan", FIXTURES / "broken", "--format", "json", "--no-cache")
    in_process = run_cli("scan", FIXTURES / "broken", "--format", "json", "--no-cache", expected_exit=broken.returncode)
    assert broken.returncode == 1 and broken.stdout == in_process.stdout  # every byte, flushed
    assert nandoctor_process("scan", FIXTURES / "clean", "--no-cache", "--quiet").returncode == 0
    assert nandoctor_process("scan", tmp_path / "missing.keras", "--no-cache").returncode == 2
    assert nandoctor_process("--version").returncode == 0
    usage = nandoctor_process("scan", "--no-such-option")
    assert usage.returncode == 2 and "No such option" in usage.stderr


def test_a_reader_that_stops_early_costs_no_traceback():
    command = f"{sys.executable} -m nandoctor scan {FIXTURES / 'broken'} --format json --no-cache | head -c 10"
    done = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=120)
    assert len(done.stdout) == 10 and "Traceback" not in done.stderr
