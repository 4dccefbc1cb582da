"""Settings from `[tool.nandoctor]` in the nearest `pyproject.toml`, as ruff reads its own.

```toml
[tool.nandoctor]
select = ["ND1", "ND601"]
ignore = ["opaque-code"]
fail-on = "error"
cache-dir = ".cache/nandoctor"                # relative to this file; default .nandoctor_cache

[tool.nandoctor.options.collapsed-weights]   # by code or name
tiny = 1e-30

[tool.nandoctor.per-file-ignores]            # a glob of the path (or of the file name) -> codes
"tests/fixtures/*.keras" = ["ND901"]

[tool.nandoctor.per-layer-ignores]           # a glob of the layer name -> codes
"gpt2_backbone/*" = ["ND301"]
```

Everything is checked when it is read (selectors, option names and their types), so a
mistake is one error naming `pyproject.toml`, not a failure of every model scanned.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from typing import Any

_KNOWN_KEYS = {"select", "ignore", "fail-on", "options", "per-file-ignores", "per-layer-ignores", "cache-dir"}


class SettingsError(ValueError):
    pass


@dataclass
class Settings:
    select: list[str] | None = None
    ignore: list[str] = field(default_factory=list)
    fail_on: str | None = None
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    per_file_ignores: dict[str, list[str]] = field(default_factory=dict)
    source: str | None = None
    cache_dir: str | None = None  # absolute, when the file sets one

    def scan_cache_folder(self, given: str | None = None) -> str:
        """Where the scan keeps its cache: `given` (--cache-dir), else NANDOCTOR_CACHE_DIR,
        else the setting, else `.nandoctor_cache` beside pyproject.toml or in the current folder."""
        from nandoctor.cache import default_folder

        return given or os.environ.get("NANDOCTOR_CACHE_DIR") or self.cache_dir or default_folder(self.source)


def find_pyproject(start: str | os.PathLike | None = None) -> str | None:
    """The nearest `pyproject.toml` in `start` (the current folder) or a folder above it."""
    # os.path, not pathlib: importing pathlib costs every run of the command 3 ms.
    directory = os.path.realpath(start or os.getcwd())
    while True:
        path = os.path.join(directory, "pyproject.toml")
        if os.path.isfile(path):
            return path
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


def load_settings(start: str | os.PathLike | None = None) -> Settings:
    path = find_pyproject(start)
    if path is None:
        return Settings()
    try:
        with open(path, encoding="utf-8") as file:
            table = tomllib.loads(file.read()).get("tool", {}).get("nandoctor", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise SettingsError(f"cannot read {path}: {error}") from None
    unknown = sorted(set(table) - _KNOWN_KEYS)
    if unknown:
        raise SettingsError(
            f"Unknown key in [tool.nandoctor] of {path}. Expected one of: "
            f"{', '.join(sorted(_KNOWN_KEYS))}. Received: {', '.join(unknown)}"
        )
    layer_ignores = _glob_table(table, "per-layer-ignores", path)
    settings = Settings(
        select=_string_list(table, "select", path) or None,
        ignore=_string_list(table, "ignore", path)
        + [f"{code}:{layer}" for layer, codes in layer_ignores.items() for code in codes],
        fail_on=table.get("fail-on"),
        options=table.get("options", {}),
        per_file_ignores=_glob_table(table, "per-file-ignores", path),
        source=path,
        cache_dir=_cache_dir(table, path),
    )
    _check(settings, path)
    return settings


def _check(settings: Settings, path: str) -> None:
    from nandoctor.catalogue import Selection, resolve_options
    from nandoctor.report import parse_severity

    try:
        Selection.resolve(settings.select, settings.ignore, settings.per_file_ignores)
        if not isinstance(settings.options, dict):
            raise ValueError(f"options must be a table of tables. Received: {settings.options!r}")
        resolve_options(settings.options)
        if settings.fail_on is not None:
            parse_severity(settings.fail_on)
    except ValueError as error:
        raise SettingsError(f"[tool.nandoctor] in {path}: {error}") from None


def _cache_dir(table: dict[str, Any], path: str) -> str | None:
    value = table.get("cache-dir")
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise SettingsError(f"[tool.nandoctor] cache-dir in {path} must be a folder's path. Received: {value!r}")
    return os.path.join(os.path.dirname(path), os.path.expanduser(value))


def _glob_table(table: dict[str, Any], key: str, path: str) -> dict[str, list[str]]:
    value = table.get(key, {})
    if not isinstance(value, dict):
        raise SettingsError(f"[tool.nandoctor.{key}] in {path} must be a table of globs and codes. Received: {value!r}")
    return {glob: _string_list(value, glob, path, f"{key}.{glob!r}") for glob in value}


def _string_list(table: dict[str, Any], key: str, path: str, label: str | None = None) -> list[str]:
    value = table.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise SettingsError(f"[tool.nandoctor] {label or key} in {path} must be a list of strings. Received: {value!r}")
    return value
