"""Each detector's documentation: the rule sections, and an Example that trips it under a
Monitor while its Use instead does not (trained for real, a few hundred tiny steps)."""

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
    monitor = Monitor(verbose=0)  # at its defaults, as a user runs it
    namespace["model"].fit(namespace["x"], namespace["y"], batch_size=1, epochs=1, verbose=0, callbacks=[monitor])
    return {finding.code for finding in monitor.report.findings}


@pytest.mark.parametrize("detector", DETECTORS, ids=lambda d: d.code)
def test_docstring_has_the_rule_sections(detector):
    headings = re.findall(r"^## +(.+?)\s*$", detector.documentation(), re.MULTILINE)
    assert headings[: len(REQUIRED_SECTIONS)] == list(REQUIRED_SECTIONS)


@pytest.mark.parametrize("detector", DETECTORS, ids=lambda d: d.code)
def test_example_trips_the_detector_and_use_instead_does_not(detector):
    assert detector.code in codes_after_training(block(detector, "Example"))
    assert codes_after_training(block(detector, "Use instead")) == set()
