"""The one exception a loader raises for a file it cannot use."""


class UnreadableFile(Exception):
    """A file is missing, truncated, corrupt, hostile or not a model.

    The message is one line that a person can act on; the CLI prints it as is.
    """


class NotAModel(UnreadableFile):
    """A valid container (zip, HDF5) that holds no Keras model: skipped in directory walks."""


def first_line(error: BaseException) -> str:
    """The first line of an exception's message, for one-line reports of library errors."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
