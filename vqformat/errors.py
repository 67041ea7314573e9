"""The one exception family the codec raises for bad files and bad arguments, and how
its warnings reach the caller."""

from __future__ import annotations

import sys
import warnings

_CALLERS_OF_THE_CODEC = ("vqformat", "PIL")  # Pillow calls the plugin for the user


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


def check_integer(
    name: str, value: object, low: int, high: int | None = None, why: str = ""
) -> int:
    """``value`` as an int if it is an integer (not a bool) in low..high, else a VQIError."""
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise VQIError(f"{name} must be an integer, got {value!r}")
    number = value.__index__()
    if number < low or (high is not None and number > high):
        allowed = f"at least {low}" if high is None else f"in {low}..{high}"
        hint = f": {why}" if why else ""
        raise VQIError(f"{name} must be {allowed}, got {number}{hint}")
    return number


def warn_caller(warning: Warning) -> None:
    """Issue ``warning`` at the first line outside the codec (and Pillow), where the
    user called it: a fixed stacklevel would name some module inside, which depends
    on the route taken (Python 3.12's ``skip_file_prefixes`` does this by path)."""
    level, frame = 2, sys._getframe(1)
    while frame is not None and _inside(frame.f_globals.get("__name__", "")):
        level, frame = level + 1, frame.f_back
    warnings.warn(warning, stacklevel=level)


def _inside(module: str) -> bool:
    return module.partition(".")[0] in _CALLERS_OF_THE_CODEC
