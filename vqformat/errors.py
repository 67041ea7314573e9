"""The one exception family the codec raises for bad files and bad arguments."""


class VQIError(ValueError):
    """A .vqi file is malformed, unsupported or over a limit, or encoder input is invalid.

    A ``ValueError`` so that callers who already catch bad-value errors catch this too.
    ``offset`` is the byte offset in the file where the problem was found, when known.
    """

    def __init__(self, message: str, offset: int | None = None) -> None:
        self.offset = offset
        if offset is not None:
            message = f"{message} (at byte {offset})"
        super().__init__(message)
