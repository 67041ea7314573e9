"""Atomic output files: complete or absent, never partial, never overwritten by accident."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from vqformat.format.atomic import OutputExistsError, atomic_output, write_atomic


def names(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def test_writes_the_whole_file_with_the_usual_mode(tmp_path):
    target = tmp_path / "out.bin"
    write_atomic(target, b"complete")
    assert target.read_bytes() == b"complete"
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
    assert names(tmp_path) == ["out.bin"]


@pytest.mark.parametrize("failure", [RuntimeError, KeyboardInterrupt])
@pytest.mark.parametrize("existing", [None, b"old content"])
def test_failure_mid_write_leaves_the_target_as_it_was(tmp_path, failure, existing):
    target = tmp_path / "out.bin"
    if existing is not None:
        target.write_bytes(existing)
    with pytest.raises(failure), atomic_output(target, force=True) as stream:
        stream.write(b"partial")
        stream.flush()
        raise failure
    assert (target.read_bytes() if target.exists() else None) == existing
    assert names(tmp_path) == ([] if existing is None else ["out.bin"])


def test_refuses_to_overwrite_without_force(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(OutputExistsError, match="exists"):
        write_atomic(target, b"new")
    write_atomic(target, b"new", force=True)
    assert target.read_bytes() == b"new"


def test_target_created_while_writing_is_not_replaced(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(OutputExistsError), atomic_output(target) as stream:
        stream.write(b"ours")
        target.write_bytes(b"theirs")
    assert target.read_bytes() == b"theirs"
    assert names(tmp_path) == ["out.bin"]


def test_a_folder_is_never_a_target(tmp_path):
    with pytest.raises(IsADirectoryError):
        write_atomic(tmp_path, b"data", force=True)


def read_fifo_in_background(fifo: Path) -> tuple[threading.Thread, list[bytes]]:
    received: list[bytes] = []

    def read() -> None:
        with open(fifo, "rb") as stream:
            received.append(stream.read())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return reader, received


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
@pytest.mark.parametrize("force", [False, True])
def test_a_fifo_is_written_through_not_replaced(tmp_path, force):
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    reader, received = read_fifo_in_background(fifo)
    write_atomic(fifo, b"streamed", force=force)
    reader.join(timeout=10)
    assert received == [b"streamed"]
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert names(tmp_path) == ["out.fifo"]
