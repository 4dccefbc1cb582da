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
    result.stdout.fnmatch_lines([
        "*nandoctor scan seed_d_padding_flatten.keras*",
        "*/seed_d_padding_flatten.keras",
        "ND301 warning embedding*",
        "*fix: Use nandoctor.layers.MaskedEmbedding*",
        "FAILED seed_d_padding_flatten.keras::nandoctor*",
    ])


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
