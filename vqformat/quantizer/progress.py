"""Progress of the slow parts of an encode, for a caller that shows it (a terminal bar).

A callback ``progress(stage, fraction)`` is installed for the duration of one encode
with ``reporting``; the quantizer's long loops call ``report``, which does nothing when
no callback is installed. A context variable rather than a parameter: the loops sit
several calls below the encoder, behind the palette-method interface, which should not
carry a display concern (and threads or tasks encoding at once each see their own).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

Progress = Callable[[str, float], None]
"""``progress(stage, fraction)``: the stage's name and how much of it is done, 0..1."""

_current: ContextVar[Progress | None] = ContextVar("progress", default=None)


@contextmanager
def reporting(progress: Progress | None) -> Iterator[None]:
    """Send the ``report`` calls made inside this block to ``progress`` (None: nowhere)."""
    token = _current.set(progress)
    try:
        yield
    finally:
        _current.reset(token)


def report(stage: str, fraction: float) -> None:
    """Tell the installed callback, if any, that ``fraction`` of ``stage`` is done."""
    progress = _current.get()
    if progress is not None:
        progress(stage, fraction)
