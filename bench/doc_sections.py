"""Writing a benchmark's figures into its marked section of docs/benchmarks.md."""

from __future__ import annotations

from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def replace_section(name: str, heading: str, section: str, preamble: str = "") -> None:
    """Replace `<!-- name:start ... -->...<!-- name:end -->`, or append it under `heading`.

    `section` must begin with `<!-- name:start` and end with `<!-- name:end -->`.
    """
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    start, end = f"<!-- {name}:start", f"<!-- {name}:end -->"
    if start in text:
        text = text[: text.index(start)] + section + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + f"\n\n## {heading}\n\n" + (preamble + "\n\n" if preamble else "") + section + "\n"
    DOC.write_text(text)
