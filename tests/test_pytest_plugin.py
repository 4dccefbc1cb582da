"""`pytest --nandoctor PATH` adds one item per model file; broken ones fail with the report."""

import shutil

from tests.conftest import FIXTURES


def copy_models(pytester, *names):
    for name in names:
        folder = "broken" if (FIXTURES / "broken" / name).exists() else "clean"
        shutil.copy(FIXTURES / folder / name, pytester.path / name)


def test_one_item_per_model_file_broken_ones_fail_with_the_report(pytester):
    copy_models(pytester, "seed_d_padding_flatten.keras", "mlp.keras", "keras2_classifier.h5", "item_vectors.npy")
    result = pytester.runpytest("--nandoctor", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*nandoctor scan seed_d_padding_flatten.keras*",
            "*/seed_d_padding_flatten.keras",
            "ND301 warning embedding*",
            "*fix: Use nandoctor.layers.MaskedEmbedding*",
            "FAILED seed_d_padding_flatten.keras::nandoctor*",
        ]
    )


def test_without_the_flag_model_files_are_not_collected(pytester):
    copy_models(pytester, "seed_d_padding_flatten.keras")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes()


def test_fail_on_error_lets_warnings_pass(pytester):
    copy_models(pytester, "seed_d_padding_flatten.keras", "softmax_single_unit_keras2.h5")
    result = pytester.runpytest("--nandoctor", "--nandoctor-fail-on", "error", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)


def test_the_fixture_asserts_health(pytester):
    copy_models(pytester, "seed_d_padding_flatten.keras", "mlp.keras")
    pytester.makepyfile(
        """
        def test_clean(nandoctor_check):
            nandoctor_check("mlp.keras")

        def test_broken(nandoctor_check):
            nandoctor_check("seed_d_padding_flatten.keras")
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*AssertionError: nandoctor found problems*"])


def test_a_failing_assert_healthy_shows_the_callers_line_and_the_report_not_nandoctors_frames(pytester):
    copy_models(pytester, "seed_d_padding_flatten.keras")
    pytester.makepyfile(
        """
        import nandoctor

        def test_broken():
            nandoctor.assert_healthy("seed_d_padding_flatten.keras")
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            '>*nandoctor.assert_healthy("seed_d_padding_flatten.keras")',
            "E*AssertionError: nandoctor found problems:",
            "E*ND301 warning embedding*",
        ]
    )
    assert "nandoctor/__init__.py" not in out and "engine.py" not in out
    assert "During handling of the above exception" not in out and "direct cause" not in out


def test_an_unreadable_file_fails_with_its_path_and_reason(pytester):
    (pytester.path / "truncated.keras").write_bytes((FIXTURES / "clean" / "mlp.keras").read_bytes()[:3000])
    result = pytester.runpytest("--nandoctor", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*truncated.keras", "  unreadable: not a valid zip archive (truncated or corrupt)"])
