"""Adds a diagnosis: its module, from a template, and its line in the catalogue.

    python -m nandoctor.scaffold rule ND304 padding-leaks-into-pooling
    python -m nandoctor.scaffold detector ND704 stalled-learning-rate
    python -m nandoctor.scaffold live ND204 unguarded-exp

Then fill in the docstring's sections and the check, run `python -m nandoctor.docgen` to
write its page, and `make test` (which runs its Example and Use instead). CONTRIBUTING.md
says the same.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
CATALOGUE = PACKAGE / "catalogue.py"

_FOLDERS = {"rule": "rules", "detector": "monitor", "live": "live"}

_DOCSTRING = '''"""## What it does
    TODO: one sentence.

    ## Why is this bad?
    TODO: the mechanism: how it becomes NaN, a leak, or lost accuracy.

    ## Example
    ```python
    import keras

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))  # TODO: a tiny model that triggers it
    ```

    ## Use instead
    ```python
    import keras

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))  # TODO: the same model, fixed
    ```
    """'''

_MODULE = """from __future__ import annotations
{imports}

class {cls}({base}):
    {doc}

    code = "{code}"
    name = "{name}"
    severity = Severity.{severity}
    # What its findings can rest on (the first is the default); the severity is capped by it.
    evidence_kinds = ({evidence})
    fix = "TODO: a short imperative."
    evidence = "the config (TODO: what it needs to be sure, and what it reports where it cannot be)."
{body}"""

# kind -> (imports, base class, severity, body): what differs between the three kinds.
_EVIDENCE = {"rule": "Evidence.CERTAIN,", "detector": "Evidence.MEASURED,", "live": "Evidence.MEASURED,"}
_KINDS = {
    "rule": (
        "\nfrom collections.abc import Iterator\n\nfrom nandoctor.diagnosis import Rule\n"
        "from nandoctor.report import Evidence, Finding, Severity\nfrom nandoctor.view import ModelView\n",
        "Rule",
        "WARNING",
        "\n    def check(self, view: ModelView) -> Iterator[Finding]:\n"
        '        return iter(())  # TODO: yield self.finding(layer.name, "what was found, with the values")\n',
    ),
    "detector": (
        "\nfrom collections.abc import Iterator\n\nfrom nandoctor.monitor.detector import Check, Detector\n"
        "from nandoctor.report import Evidence, Finding, Severity\n",
        "Detector",
        "WARNING",
        "\n    def observe(self, check: Check) -> Iterator[Finding]:\n"
        '        return iter(())  # TODO: yield self.finding_at(check.step, layer, "what was seen")\n',
    ),
    "live": (
        "\nfrom nandoctor.diagnosis import LiveRule\nfrom nandoctor.report import Evidence, Severity\n",
        "LiveRule",
        "ERROR",
        "    # Raised by a live check: add it to that check's `raises` in nandoctor/live/.\n",
    ),
}


def class_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("-"))


def add(kind: str, code: str, name: str, catalogue: Path = CATALOGUE, package: Path = PACKAGE) -> Path:
    """Write the module and add the catalogue line; `ValueError` if the code or name is taken."""
    if not re.fullmatch(r"ND[1-9]\d\d", code):
        raise ValueError(f"A code is ND followed by three digits (ND304). Received: {code!r}")
    if not re.fullmatch(r"[a-z]+(-[a-z0-9]+)*", name):
        raise ValueError(f"A name is lower-case words joined by hyphens (padding-not-masked). Received: {name!r}")
    text = catalogue.read_text()
    if code in _codes_by_class(package).values() or re.search(rf"\b{class_name(name)}\b", text):
        raise ValueError(f"{code} or {name} is in the catalogue already; codes are never reused.")
    module = name.replace("-", "_")
    path = package / _FOLDERS[kind] / f"{module}.py"
    if path.exists():
        raise ValueError(f"{path} exists already.")
    cls = class_name(name)
    imports, base, severity, body = _KINDS[kind]
    path.write_text(
        _MODULE.format(
            imports=imports,
            cls=cls,
            base=base,
            doc=_DOCSTRING,
            code=code,
            name=name,
            severity=severity,
            body=body,
            evidence=_EVIDENCE[kind],
        )
    )
    catalogue.write_text(_with_entry(text, kind, f"nandoctor.{_FOLDERS[kind]}.{module}", cls, code, name, package))
    return path


def _with_entry(text: str, kind: str, module: str, cls: str, code: str, name: str, package: Path) -> str:
    lines = text.splitlines()
    # Every diagnosis is loaded on first use (a cached scan imports none). Its stand-in goes
    # after the others, before the list.
    runs_on = {"rule": "FILE", "live": "LIVE"}.get(kind, "TRAINING")
    position = lines.index("DIAGNOSES: tuple[type[Diagnosis], ...] = (")
    while lines[position - 1].startswith("#") or not lines[position - 1].strip():
        position -= 1
    lines.insert(position, f'{cls} = _later("{module}:{cls}", "{code}", "{name}", RunsOn.{runs_on})')
    start = lines.index("DIAGNOSES: tuple[type[Diagnosis], ...] = (")
    end = lines.index(")", start)
    codes = _codes_by_class(package)
    after = next((i for i in range(start + 1, end) if codes.get(lines[i].strip().rstrip(","), "ND999") > code), end)
    lines.insert(after, f"    {cls},")
    return "\n".join(lines) + "\n"


def _codes_by_class(package: Path) -> dict[str, str]:
    """Each diagnosis class in the package, by name, with its code (one read of each module)."""
    codes = {}
    for path in package.rglob("*.py"):
        source = path.read_text()
        for body in re.split(r"^class ", source, flags=re.MULTILINE)[1:]:
            match = re.search(r'^    code = "(ND\d+)"', body, re.MULTILINE)
            name = re.match(r"\w+", body)  # what follows `class `: the class's name
            if match and name:
                codes[name.group(0)] = match.group(1)
    return codes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nandoctor.scaffold", description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=sorted(_KINDS), help="a static rule, a training detector, or a live rule")
    parser.add_argument("code", help="the new permanent code, e.g. ND304")
    parser.add_argument("name", help="the hazard's name, lower-case with hyphens, e.g. padding-leaks-into-pooling")
    args = parser.parse_args(argv)
    try:
        path = add(args.kind, args.code.upper(), args.name)
    except ValueError as error:
        print(f"nandoctor.scaffold: {error}", file=sys.stderr)
        return 2
    print(
        f"wrote {path} and its line in {CATALOGUE}; now fill in its docstring and check, then run "
        "`python -m nandoctor.docgen` and `make test`"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
