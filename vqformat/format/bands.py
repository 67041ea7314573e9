"""The banded layout of methods 2 and 3: band-scan pixel order and byte-aligned fields.

Band scan is the pixel order that lets a byte-oriented compressor see two dimensions.

A strip is cut into bands of ``height`` rows; each band is read column by column,
top to bottom within a column, and the bands follow one another top to bottom (a
last band of fewer rows is read the same way). The pixel above is then the previous
symbol and the pixel to the left lies ``height`` symbols back, so LZ77 matches
reach both neighbours; with ``height`` = 1 it is the plain row-major order. Both
directions are a reshape and a transpose (spec/vqi.md section 7.1).

Fields of 1, 2, 4, 8 or 16 bits never straddle a byte; they use the bit-packing
layout of ``bitpack`` at that width, whose numpy path packs them a byte at a time.
"""

from __future__ import annotations

import sys

import numpy as np

from ..errors import VQIError
from . import bitpack

_LANE_FIELDS = frozenset({2, 4})  # 1-bit fields: np.unpackbits then band_unscan is as fast
_BAND_COLUMN_WORDS = {2: np.uint16, 4: np.uint32}  # 8-row columns gain nothing as words


def field_bits(bits: int) -> int:
    """Byte-friendly field width for b-bit indices: the power of two 1, 2, 4, 8 or 16 >= b."""
    return 0 if bits == 0 else 1 << (bits - 1).bit_length()


def unpack_fields(data: bytes, count: int, field: int, bits: int) -> np.ndarray:
    """Unpack ``count`` fields, rejecting a wrong length, padding bits or a value >= 2**bits."""
    values = bitpack.unpack_exact(data, count, field)
    if field > bits and values.size and int(values.max()) >> bits:
        raise VQIError(f"value {int(values.max())} does not fit in {bits} bits per index")
    return values


def unpack_band_fields(
    data: bytes | np.ndarray, rows: int, width: int, height: int, field: int, bits: int
) -> np.ndarray:
    """The (rows, width) indices of a band-scanned field stream, validated as by
    :func:`unpack_fields`.

    When a byte holds whole band columns (``height`` a multiple of 8 / ``field``), each
    position in a byte is a row of the band: one shift and mask of all bytes yields that
    row for every band and column, which skips the strided reordering of
    :func:`band_unscan`. The shifts work on 64-bit words (numpy shifts 8-bit arrays
    several times slower); the mask keeps each byte's own bits.
    """
    if field == 8:  # a byte a field: validate and reorder the bytes, no unpacking copy
        bitpack.check_packed(data, rows * width, field)
        values = np.frombuffer(data, dtype=np.uint8)
        if bits < 8 and values.size and int(values.max()) >> bits:
            raise VQIError(f"value {int(values.max())} does not fit in {bits} bits per index")
        return band_unscan(values, rows, width, height)
    per_byte = 8 // field if field in _LANE_FIELDS else 0
    if not per_byte or height % per_byte or rows < height:
        return band_unscan(unpack_fields(data, rows * width, field, bits), rows, width, height)
    bitpack.check_packed(data, rows * width, field)
    raw = np.frombuffer(data, dtype=np.uint8)
    full, column_bytes = rows - rows % height, height // per_byte
    head_size = full * width // per_byte
    words = np.zeros(-(-head_size // 8), dtype=np.uint64)
    words.view(np.uint8)[:head_size] = raw[:head_size]
    lane_mask = np.uint64(0x0101010101010101 * ((1 << field) - 1))
    indices = np.empty((rows, width), dtype=np.uint8)
    target = indices[:full].reshape(-1, height, width)
    lanes = np.empty_like(words)
    head = lanes.view(np.uint8)[:head_size].reshape(-1, width, column_bytes)
    for position, shift in enumerate(bitpack.byte_shifts(field)):
        np.bitwise_and(words >> np.uint64(shift), lane_mask, out=lanes)
        for byte in range(column_bytes):
            target[:, byte * per_byte + position, :] = head[:, :, byte]
    tail = bitpack.unpack(raw[head_size:], (rows - full) * width, field)
    indices[full:] = tail.reshape(width, rows - full).T
    if field > bits and int(indices.max()) >> bits:
        raise VQIError(f"value {int(indices.max())} does not fit in {bits} bits per index")
    return indices


def band_scan(indices: np.ndarray, height: int) -> np.ndarray:
    """The (rows, width) indices as a 1-D array in band-scan order."""
    rows, width = indices.shape
    full = rows - rows % height
    sequence = np.empty(rows * width, dtype=indices.dtype)
    bands = sequence[: full * width].reshape(-1, width, height)
    source = indices[:full].reshape(-1, height, width)
    for row in range(height):  # one strided copy per row of a band: faster than a transpose
        bands[:, :, row] = source[:, row, :]
    sequence[full * width :] = indices[full:].T.ravel()
    return sequence


def band_unscan(sequence: np.ndarray, rows: int, width: int, height: int) -> np.ndarray:
    """Invert :func:`band_scan`: ``sequence`` holds rows x width values in band-scan order.

    A column of a 2- or 4-row band of bytes is one 16- or 32-bit word: a shift of all
    words, cast to bytes, yields one row of every band, 2-3 times faster than the strided
    copies that serve the other heights.
    """
    if height == 1:
        return sequence.reshape(rows, width)
    full = rows - rows % height
    indices = np.empty((rows, width), dtype=sequence.dtype)
    target = indices[:full].reshape(-1, height, width)
    word = _BAND_COLUMN_WORDS.get(height) if sequence.dtype == np.uint8 else None
    if word is None:
        bands = sequence[: full * width].reshape(-1, width, height)
        for row in range(height):
            target[:, row, :] = bands[:, :, row]
    else:
        columns = sequence[: full * width].view(word).reshape(-1, width)
        for row in range(height):
            shift = 8 * (row if sys.byteorder == "little" else height - 1 - row)
            np.right_shift(columns, shift, out=target[:, row, :], casting="unsafe")
    indices[full:] = sequence[full * width :].reshape(width, rows - full).T
    return indices


def split_runs(sequence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run-start flags (1 where the value differs from the one before) and those values.

    In band-scan order most pixels repeat the one above or to the left; the flags
    and the run values (literals) compress far better apart than interleaved.
    """
    starts = np.ones(sequence.size, dtype=np.uint8)
    np.not_equal(sequence[1:], sequence[:-1], out=starts[1:].view(bool))
    return starts, sequence[starts.view(bool)]


FILL_BLOCK = 1 << 15
"""Positions filled at once by counts: their ``intp`` counts (256 KiB) stay in cache and
in reused memory; counts for a whole strip take 8 bytes a byte, and fresh pages of
that size cost more to fault in than the fill itself."""

LONG_RUNS = 4
"""Mean run length (bytes per literal) from which ``repeat`` fills the runs: on flat
images (12-30 bytes a run) it is 2-5 times faster than counts, on photos (1.2-2.6
bytes a run) 1.2-3 times slower."""


def join_runs(starts: np.ndarray, literals: np.ndarray) -> np.ndarray:
    """Invert :func:`split_runs`: each literal fills its run (a forward fill).

    ``starts`` holds 0/1 flags as uint8. The number of literals, known before filling,
    picks the fill: ``repeat`` costs per run, counts and ``take`` per byte.
    """
    if starts.size and not starts[0]:
        raise VQIError("the first value is not flagged as the start of a run")
    if starts.size >= LONG_RUNS * literals.size:
        positions = np.flatnonzero(starts.view(bool))
        _check_literal_count(positions.size, literals)
        return _repeat_runs(positions, starts.size, literals)
    _check_literal_count(int(np.count_nonzero(starts)), literals)
    return _count_runs(starts, literals)


def _check_literal_count(given: int, literals: np.ndarray) -> None:
    if given != literals.size:
        raise VQIError(f"{given} runs start but {literals.size} literals are given")


def _repeat_runs(positions: np.ndarray, size: int, literals: np.ndarray) -> np.ndarray:
    """Each literal repeated over its run, from its start ``positions`` to the next."""
    lengths = np.empty_like(positions)
    np.subtract(positions[1:], positions[:-1], out=lengths[:-1])
    lengths[-1:] = size - positions[-1:]
    return np.repeat(literals, lengths)


def _count_runs(starts: np.ndarray, literals: np.ndarray) -> np.ndarray:
    """A running count of run starts gives every position the literal it copies.

    The counts are ``intp``, the type ``take`` indexes with, so it need not convert
    them. Each block counts from the literal of its first position (its first count
    is 0), so a count indexes the literals from that one on, with no extra pass.
    """
    filled = np.empty(starts.size, dtype=literals.dtype)
    counts = np.zeros(min(FILL_BLOCK, starts.size), dtype=np.intp)
    literal = -1  # index of the literal the block's first position copies
    for first in range(0, starts.size, FILL_BLOCK):
        block = slice(first, min(first + FILL_BLOCK, starts.size))
        size = block.stop - first
        literal += int(starts[first])
        np.cumsum(starts[first + 1 : block.stop], dtype=np.intp, out=counts[1:size])
        # the counts stay below the literals left (their number was checked): no bounds check
        np.take(literals[literal:], counts[:size], out=filled[block], mode="clip")
        literal += int(counts[size - 1])
    return filled
