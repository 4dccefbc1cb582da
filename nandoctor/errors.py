"""The one exception a loader raises for a file it cannot use."""

import re


class UnreadableFile(Exception):
    """A file is missing, truncated, corrupt, hostile or not a model.

    The message is one line that a person can act on; the CLI prints it as is.
    """


class NotAModel(UnreadableFile):
    """A valid container (zip, HDF5) that holds no Keras model: skipped in directory walks."""


def first_line(error: BaseException) -> str:
    """The first line of an exception's message, for one-line reports of library errors, less
    any memory address (`ast.literal_eval` names the node it refuses as `<ast.BinOp object at
    0x7f...>`): a file's line is the same on every run, as a serial, parallel or cached scan."""
    text = _MEMORY_ADDRESS.sub("", str(error)).strip()
    return text.splitlines()[0] if text else type(error).__name__


_MEMORY_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
