"""The five field reports, run as a user runs them (`--quick`: a sliver of the data, a
single epoch): nandoctor must report the fault on each broken model, and nothing at
warning or above on the fixed one, in the scan, the live check and (report C) the Monitor."""

import importlib

import numpy as np
import pytest


def run(module: str, tmp_path) -> dict:
    return importlib.import_module(f"examples.{module}").main(["--quick", "--out", str(tmp_path)])


def assert_nothing_at_warning_or_above(results: dict) -> None:
    for stage in ("scan_serious", "check_serious", "monitor_serious"):
        assert results.get(stage, []) == [], f"{stage}: {results.get(stage)}"


def test_a_relu_output_under_cross_entropy_is_an_error_and_the_fixed_network_is_healthy(tmp_path):
    broken = run("a_memory.broken", tmp_path)
    assert "ND601" in broken["scan_serious"] and "ND601" in broken["check_serious"]
    assert_nothing_at_warning_or_above(run("a_memory.fixed", tmp_path))


def test_b_a_tie_held_by_reference_is_broken_in_the_file_and_tied_embedding_survives(tmp_path):
    broken = run("b_tied.broken", tmp_path)
    assert "ND402" in broken["scan_serious"] and "ND402" in broken["check_serious"]
    assert broken["reload"].startswith("AttributeError")  # what the user meets: the load fails
    fixed = run("b_tied.fixed", tmp_path)
    assert_nothing_at_warning_or_above(fixed)
    assert fixed["reload_max_difference"] == 0.0 and fixed["tie_error_after_more_training"] < 1e-5
    assert fixed["matrices_in_reloaded_embedding"] == 1 and fixed["untied_scan"] == ["ND401"]
    assert fixed["untied"]["parameters"] - fixed["tied"]["parameters"] == 2000 * 128 + 2000  # matrix and bias


def test_c_zero_rows_under_a_hand_written_cosine_are_found_three_ways(tmp_path):
    broken = run("c_cosine.broken", tmp_path)
    # The scan cannot see the Lambda that divides: the zero rows are inferred there (info), and
    # check() measures the NaN they make, which raises them to an error.
    assert "ND101" in broken["scan"] and "ND101" not in broken["scan_serious"]
    assert {"ND101", "ND201", "ND202"} <= set(broken["check_serious"])
    (nonfinite,) = [f for f in broken["monitor"] if f["code"] == "ND702"]
    assert nonfinite["layer"] == "cos_pos" and nonfinite["step"] == 1
    assert not broken["weights_finite_at_end"]
    fixed = run("c_cosine.fixed", tmp_path)
    assert_nothing_at_warning_or_above(fixed)
    assert fixed["weights_finite_at_end"] and np.isfinite(fixed["loss"]).all()
    assert (tmp_path / "broken_health.png").exists() and (tmp_path / "fixed_health.png").exists()


def test_d_padding_into_flatten_is_found_and_confirmed_and_masked_embedding_is_clean(tmp_path):
    broken = run("d_padding.broken", tmp_path)
    assert {"ND301", "ND303"} <= set(broken["scan_serious"]) and "ND301" in broken["check_serious"]
    fixed = run("d_padding.fixed", tmp_path)
    assert_nothing_at_warning_or_above(fixed)
    assert fixed["padding_fraction"] > 0.9 and (tmp_path / "learning_curves.png").exists()


@pytest.mark.parametrize("script", ["e_characters.broken", "e_characters.fixed"])
def test_e_a_dropped_causal_mask_is_found_by_the_scan_and_the_probe(tmp_path, script):
    results = run(script, tmp_path)
    if script.endswith("broken"):
        assert "ND501" in results["scan_serious"] and "ND502" in results["check_serious"]
    else:
        assert_nothing_at_warning_or_above(results)
        assert results["with_auxiliary_losses"]["parameters"] > results["without_auxiliary_losses"]["parameters"]


def test_the_documented_figures_are_those_of_the_committed_full_runs():
    """docs/examples.md and the READMEs' results blocks are written from results/*.json."""
    from examples import summary

    assert summary.main(["--check"]) == 0
