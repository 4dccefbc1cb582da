"""Settings from `[tool.nandoctor]` in the nearest `pyproject.toml`, as ruff reads its own.

```toml
[tool.nandoctor]
select = ["ND1", "ND601"]
ignore = ["opaque-code"]
fail-on = "error"

[tool.nandoctor.options.collapsed-weights]
tiny = 1e-30
```
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_KNOWN_KEYS = {"select", "ignore", "fail-on", "options"}


class SettingsError(ValueError):
    pass


@dataclass
class Settings:
    select: list[str] | None = None
    ignore: list[str] = field(default_factory=list)
    fail_on: str | None = None
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str | None = None


def find_pyproject(start: str | os.PathLike | None = None) -> Path | None:
    directory = Path(start or os.getcwd()).resolve()
    for candidate in (directory, *directory.parents):
        path = candidate / "pyproject.toml"
        if path.is_file():
            return path
    return None


def load_settings(start: str | os.PathLike | None = None) -> Settings:
    path = find_pyproject(start)
    if path is None:
        return Settings()
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8")).get("tool", {}).get("nandoctor", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise SettingsError(f"cannot read {path}: {error}") from None
    unknown = sorted(set(table) - _KNOWN_KEYS)
    if unknown:
        raise SettingsError(
            f"Unknown key in [tool.nandoctor] of {path}. Expected one of: "
            f"{', '.join(sorted(_KNOWN_KEYS))}. Received: {', '.join(unknown)}"
        )
    return Settings(
        select=_string_list(table, "select", path) or None,
        ignore=_string_list(table, "ignore", path),
        fail_on=table.get("fail-on"),
        options=table.get("options", {}),
        source=str(path),
    )


def _string_list(table: dict[str, Any], key: str, path: Path) -> list[str]:
    value = table.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise SettingsError(f"[tool.nandoctor] {key} in {path} must be a list of strings. Received: {value!r}")
    return value
