"""The pytest plugin: `pytest --nandoctor models/` adds one test per model file, which fails
with nandoctor's report; the `nandoctor_check` fixture asserts a model or file is healthy.

Registered through the `pytest11` entry point, so installing nandoctor is enough.
"""

from __future__ import annotations

import pytest

from nandoctor.loaders import MODEL_SUFFIXES


def pytest_addoption(parser):
    group = parser.getgroup("nandoctor")
    group.addoption(
        "--nandoctor", action="store_true", help="scan the model files among the given paths with nandoctor"
    )
    group.addoption(
        "--nandoctor-fail-on",
        default="warning",
        choices=("error", "warning", "info"),
        help="severity at which a model file's test fails (default: warning)",
    )


def pytest_collect_file(file_path, parent):
    if parent.config.getoption("nandoctor") and file_path.name.lower().endswith(MODEL_SUFFIXES):
        return NandoctorFile.from_parent(parent, path=file_path)
    return None


class NandoctorFile(pytest.File):
    def collect(self):
        yield NandoctorItem.from_parent(self, name="nandoctor")


class NandoctorItem(pytest.Item):
    def runtest(self):
        import nandoctor
        from nandoctor.report import FileStatus

        report = nandoctor.scan(str(self.path))
        (result,) = report.files
        if result.status is FileStatus.SKIPPED:
            pytest.skip(f"not a model: {result.error}")
        fail_on = self.config.getoption("nandoctor_fail_on")
        if report.exit_code(fail_on) != 0:
            raise NandoctorFailure(report)

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, NandoctorFailure):
            from nandoctor.reporters.text import render_text

            return render_text(excinfo.value.report)  # names each unreadable file with its reason
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, f"nandoctor scan {self.path.name}"


class NandoctorFailure(Exception):
    def __init__(self, report):
        super().__init__("nandoctor found problems")
        self.report = report


@pytest.fixture
def nandoctor_check():
    """`nandoctor_check(model_or_path, fail_on="warning")` fails the test with the report."""
    import nandoctor

    return nandoctor.assert_healthy
