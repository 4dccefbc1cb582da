"""Each detector's documentation: the rule sections, and an Example that trips it under a
Monitor while its Use instead does not, each run exactly as the page shows it (its own `fit`
settings, the Monitor at its defaults; trained for real, a few hundred tiny steps)."""

import inspect
import re

import keras
import pytest

from nandoctor.catalogue import diagnoses_running_on
from nandoctor.diagnosis import REQUIRED_SECTIONS, RunsOn
from nandoctor.monitor import Monitor

DETECTORS = diagnoses_running_on(RunsOn.TRAINING)


def block(detector, section: str) -> str:
    text = detector.documentation().split(f"## {section}", 1)[1]
    return re.search(r"```python\n(.*?)```", text, re.DOTALL).group(1)


def codes_after_training(code: str) -> set[str]:
    keras.utils.set_random_seed(0)
    namespace: dict = {}
    exec(compile(code, "<detector example>", "exec"), namespace)
    monitor = namespace["monitor"]
    assert isinstance(monitor, Monitor) and monitor.model is namespace["model"]  # the example trained with it
    return {finding.code for finding in monitor.report.findings}


@pytest.mark.parametrize("detector", DETECTORS, ids=lambda d: d.code)
def test_docstring_has_the_rule_sections(detector):
    headings = re.findall(r"^## +(.+?)\s*$", detector.documentation(), re.MULTILINE)
    assert headings[: len(REQUIRED_SECTIONS)] == list(REQUIRED_SECTIONS)


@pytest.mark.parametrize("detector", DETECTORS, ids=lambda d: d.code)
def test_example_trips_the_detector_and_use_instead_does_not(detector):
    assert detector.code in codes_after_training(block(detector, "Example"))
    assert codes_after_training(block(detector, "Use instead")) == set()


def test_the_monitor_page_documents_every_option():
    from tests.conftest import ROOT

    page = (ROOT / "docs" / "monitor.md").read_text()
    arguments = [name for name in inspect.signature(Monitor.__init__).parameters if name != "self"]
    assert arguments and all(f"| `{name}` |" in page for name in arguments)
    for detector in DETECTORS:
        for option, default in detector.options.items():
            assert f"| `{option}` | `{default!r}` |" in page, (detector.code, option)
