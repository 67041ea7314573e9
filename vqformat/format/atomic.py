"""Write output files atomically: readers see the old file or the complete new one, never a part.

Data goes to a temporary file in the destination folder (so the final rename stays on one
file system), is flushed and fsynced, then moved onto the target in one step. Any failure,
including KeyboardInterrupt, removes the temporary file and leaves the target untouched.
A symbolic link is written through (its target file is replaced, the link stays), and a
replaced file keeps its permission bits. A target that is not a regular file (``/dev/null``,
a FIFO, a terminal) cannot be replaced by a rename and holds no file to lose: it is written
directly, without needing ``force``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

_TEMP_ATTEMPTS = 100


class OutputExistsError(FileExistsError):
    """The target exists and overwriting was not requested."""

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__(f"{os.fspath(path)} exists (use --force to overwrite)")


def is_special(path: str | os.PathLike) -> bool:
    """Whether ``path`` (through links) exists and is neither a regular file nor a folder."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def check_target(path: str | os.PathLike, *, force: bool) -> None:
    """Fail early, before any work is done, if ``path`` cannot become an output file."""
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), os.fspath(target))
    if not force and (target.exists() or target.is_symlink()) and not is_special(target):
        raise OutputExistsError(target)


def _create_temporary(target: Path) -> tuple[Path, int]:
    """An exclusive new file beside ``target``, created with the usual umask-derived mode."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(_TEMP_ATTEMPTS):
        temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            return temporary, os.open(temporary, flags, 0o666)
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a temporary file beside {target}")


def _keep_mode(descriptor: int, target: Path) -> None:
    """Give the new file the permission bits of the file it replaces, if there is one."""
    with contextlib.suppress(FileNotFoundError):
        os.fchmod(descriptor, stat.S_IMODE(os.stat(target).st_mode))


def _sync_directory(folder: Path) -> None:
    """Make the rename itself durable; not every platform can open a folder, which is harmless."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _commit(temporary: Path, target: Path, force: bool) -> None:
    """Move the finished file onto the target; without ``force`` never replace one that exists.

    A hard link fails if the target exists, which closes the gap between checking and
    renaming; file systems without hard links fall back to check-then-replace.
    """
    if force:
        os.replace(temporary, target)
        return
    try:
        os.link(temporary, target)
    except FileExistsError:
        raise OutputExistsError(target) from None
    except OSError:
        check_target(target, force=False)
        os.replace(temporary, target)
    else:
        os.unlink(temporary)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, *, force: bool = False) -> Iterator[BinaryIO]:
    """Yield a binary file whose content replaces ``path`` only if the block completes.

    Raises OutputExistsError if ``path`` exists and ``force`` is false, and
    IsADirectoryError if it is a folder.
    """
    check_target(path, force=force)
    if is_special(path):
        with open(path, "wb") as stream:
            yield stream
        return
    target = Path(os.path.realpath(path)) if os.path.islink(path) else Path(path)
    temporary, descriptor = _create_temporary(target)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            _keep_mode(stream.fileno(), target)
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        _commit(temporary, target, force)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _sync_directory(target.parent)


def write_atomic(path: str | os.PathLike, data: bytes, *, force: bool = False) -> None:
    """Write ``data`` to ``path`` atomically (see ``atomic_output``)."""
    with atomic_output(path, force=force) as stream:
        stream.write(data)
