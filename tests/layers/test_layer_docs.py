"""Every layer's documentation example runs, and the generated page is up to date."""

import re

import keras
import numpy as np
import pytest

import nandoctor
from nandoctor import docgen

# Backend-neutral: `make test` runs these again under KERAS_BACKEND=jax.
pytestmark = pytest.mark.every_backend


@pytest.mark.parametrize("cls", docgen.layer_classes(), ids=lambda cls: cls.__name__)
def test_docstring_example_runs(cls, keras_seed):
    if cls.__name__ == "AuxiliaryLossSchedule":
        pytest.skip("its example is AuxiliaryLosses's")
    match = re.search(r"```python\n(.*?)```", cls.__doc__, re.DOTALL)
    assert match, f"{cls.__name__} has no example"
    code = "\n".join(line[4:] if line.startswith("    ") else line for line in match.group(1).splitlines())
    exec(compile(code, f"<{cls.__name__} example>", "exec"), {"keras": keras, "np": np, "nandoctor": nandoctor})


@pytest.mark.parametrize("cls", docgen.layer_classes(), ids=lambda cls: cls.__name__)
def test_layer_names_the_rules_it_fixes_or_the_report_it_serves(cls):
    assert re.search(r"`ND\d{3}`|field report|AuxiliaryLosses", cls.__doc__, re.IGNORECASE), cls.__name__
