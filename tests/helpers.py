"""Helpers shared by the tests and the fuzzing tools: walking and re-framing chunks."""

from __future__ import annotations

import zlib
from collections.abc import Iterator

SIGNATURE_SIZE = 8
CHUNK_FRAMING = 12  # length, type and CRC around a chunk's data


def iter_chunks(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(offset, declared length, type) of each complete chunk, walked as a reader walks them.

    Each step advances at least 12 bytes; a trailing incomplete chunk is not yielded.
    """
    at = SIGNATURE_SIZE
    while at + CHUNK_FRAMING <= len(data):
        length = int.from_bytes(data[at : at + 4], "big")
        if at + CHUNK_FRAMING + length > len(data):
            return
        yield at, length, bytes(data[at + 4 : at + 8])
        at += CHUNK_FRAMING + length


def repair_crcs(data: bytes) -> bytes:
    """Rewrite the CRC of every complete chunk, so mutations reach the parser behind them."""
    out = bytearray(data)
    for at, length, _ in iter_chunks(data):
        end = at + 8 + length
        out[end : end + 4] = zlib.crc32(out[at + 4 : end]).to_bytes(4, "big")
    return bytes(out)
