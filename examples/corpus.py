"""Real English text that needs no download: the prose of Python's own reference manual.

Every Python ships `pydoc_data.topics`, the text `help("assert")` prints: 79 sections of the
language reference. The examples train on its prose (grammar rules and code samples are
indented in the source, so dropping indented lines leaves the sentences), which keeps them
offline and reproducible on any machine with Python 3.11.
"""

import re
from collections import Counter
from pydoc_data.topics import topics

PADDING = "<pad>"
UNKNOWN = "<unk>"
_HEADING_UNDERLINE = re.compile(r"^[*=\-~^]{3,}$")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?|[.,;:?!]")


def english_text() -> str:
    """The reference manual's prose, sections in a fixed order, one paragraph per line."""
    paragraphs = []
    for name in sorted(topics):
        lines = []
        for line in topics[name].splitlines():
            # Indented lines are grammar productions and code samples, not English.
            if line.startswith((" ", "\t")) or _HEADING_UNDERLINE.match(line.strip()):
                lines.append("")
            else:
                lines.append(line.strip())
        paragraphs.extend(" ".join(block.split()) for block in "\n".join(lines).split("\n\n"))
    return "\n".join(paragraph for paragraph in paragraphs if paragraph)


def words(text: str) -> list[str]:
    """Lower-case words and punctuation marks, in reading order."""
    return _WORD.findall(text.lower())


def held_out_split(sequence, held_out_fraction: float = 0.1):
    """The first part for training, the tail for evaluation (contiguous, so no text leaks)."""
    boundary = int(len(sequence) * (1 - held_out_fraction))
    return sequence[:boundary], sequence[boundary:]


def vocabulary(tokens, size: int) -> list[str]:
    """The `size` most frequent tokens, after the padding (id 0) and unknown (id 1) entries."""
    counts = Counter(tokens)
    # Ties broken alphabetically, so the ids do not depend on where a word first appears.
    frequent = sorted(counts, key=lambda token: (-counts[token], token))[: size - 2]
    return [PADDING, UNKNOWN, *frequent]
