"""Bit packing of palette indices: b bits each, MSB-first, zero-padded to a whole byte.

Two implementations of one layout. The numpy path handles b = 1..8 and 16 (every
width a palette of at most 256 colours needs, and the 16-bit case): widths that
divide a byte (1, 2, 4) with one whole-array uint8 shift per position in a byte,
the others by packing groups of eight indices, which always fill exactly b bytes.
The bitarray path handles any width with a fixed-length prefix code and packs the
remaining widths 9..15; they are unpacked with numpy bit by bit, so decoding never
imports bitarray.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..errors import VQIError

_GROUP = 8  # eight b-bit indices fill exactly b bytes
_NUMPY_WIDTHS = frozenset(range(1, 9)) | {16}
_BYTE_DIVIDING_WIDTHS = frozenset({2, 4})  # 1 has numpy's packbits
_WHOLE_WIDTHS = frozenset({1, 2, 4, 8, 16})
"""Widths unpacked with no temporary larger than the output, so in one call."""
UNPACK_CHUNK = 1 << 16
"""Indices unpacked at once: a multiple of eight, so every chunk starts on a byte boundary."""


def packed_size(count: int, bits: int) -> int:
    """Bytes needed for ``count`` indices of ``bits`` bits, padded to a whole byte."""
    return (count * bits + 7) // 8


def index_dtype(bits: int) -> type[np.unsignedinteger]:
    """The narrowest unsigned dtype that holds a ``bits``-bit index."""
    return np.uint8 if bits <= 8 else np.uint16


def pack(indices: np.ndarray, bits: int) -> bytes:
    """Pack a flat array of indices, each below 2**bits, into bytes."""
    indices = np.ascontiguousarray(indices).ravel()
    if bits == 0 or indices.size == 0:
        return b""
    if bits in _NUMPY_WIDTHS:
        return _pack_numpy(indices, bits)
    return pack_bitarray(indices, bits)


def unpack(data: bytes, count: int, bits: int) -> np.ndarray:
    """Unpack ``count`` indices of ``bits`` bits; ``data`` must hold exactly packed_size bytes.

    Widths that need wide temporaries (8 bytes an index on the numpy path) work
    UNPACK_CHUNK indices at a time, so those stay bounded however large a strip a file
    declares; the others are one call, as a per-piece Python loop costs more than them.
    """
    if bits == 0:
        return np.zeros(count, dtype=np.uint8)
    if bits in _WHOLE_WIDTHS:
        return _unpack_numpy(data, count, bits)
    unpack_piece = _unpack_numpy if bits in _NUMPY_WIDTHS else _unpack_bits
    view = memoryview(data)
    indices = np.empty(count, dtype=index_dtype(bits))
    for start in range(0, count, UNPACK_CHUNK):
        size = min(UNPACK_CHUNK, count - start)
        first_byte = start * bits // 8
        piece = view[first_byte : first_byte + packed_size(size, bits)]
        indices[start : start + size] = unpack_piece(piece, size, bits)
    return indices


def check_packed(data: bytes, count: int, bits: int) -> None:
    """Reject a packed stream of the wrong length or with non-zero padding bits."""
    expected = packed_size(count, bits)
    if len(data) != expected:
        raise VQIError(f"stream holds {len(data)} bytes of indices, expected {expected}")
    padding = expected * 8 - count * bits
    if padding and data[-1] & ((1 << padding) - 1):
        raise VQIError("padding bits after the last index are not zero")


def unpack_exact(data: bytes, count: int, bits: int) -> np.ndarray:
    """Unpack ``count`` indices, rejecting a wrong length or non-zero padding bits."""
    check_packed(data, count, bits)
    return unpack(data, count, bits)


def byte_shifts(bits: int) -> np.ndarray:
    """Left shifts of the indices in one byte, the first index in the high bits."""
    return np.arange(8 - bits, -1, -bits, dtype=np.uint8)


def _pack_numpy(indices: np.ndarray, bits: int) -> bytes:
    if bits == 16:
        return indices.astype(">u2").tobytes()
    if bits == 8:
        return indices.astype(np.uint8).tobytes()
    if bits == 1:
        return np.packbits(indices.astype(bool)).tobytes()
    if bits in _BYTE_DIVIDING_WIDTHS:
        return _pack_byte_dividing(indices, bits)
    groups = -(-indices.size // _GROUP)
    padded = np.zeros(groups * _GROUP, dtype=np.uint64)
    padded[: indices.size] = indices
    shifts = np.arange(_GROUP - 1, -1, -1, dtype=np.uint64) * np.uint64(bits)
    words = np.bitwise_or.reduce(padded.reshape(groups, _GROUP) << shifts, axis=1)
    group_bytes = words.astype(">u8").view(np.uint8).reshape(groups, 8)[:, 8 - bits :]
    return group_bytes.tobytes()[: packed_size(indices.size, bits)]


def _pack_byte_dividing(indices: np.ndarray, bits: int) -> bytes:
    """Strided column reads, not broadcasting, which numpy runs slowly over a short axis."""
    per_byte = 8 // bits
    padded = np.zeros(-(-indices.size // per_byte) * per_byte, dtype=np.uint8)
    padded[: indices.size] = indices
    columns = padded.reshape(-1, per_byte)
    packed = np.zeros(len(columns), dtype=np.uint8)
    for position, shift in enumerate(byte_shifts(bits)):
        packed |= columns[:, position] << shift
    return packed.tobytes()


def _unpack_numpy(data: bytes, count: int, bits: int) -> np.ndarray:
    if bits == 16:
        return np.frombuffer(data, dtype=">u2", count=count).astype(np.uint16)
    raw = np.frombuffer(data, dtype=np.uint8)
    if bits == 8:
        return raw[:count].copy()
    if bits == 1:
        return np.unpackbits(raw, count=count)
    if bits in _BYTE_DIVIDING_WIDTHS:
        values = np.empty((raw.size, 8 // bits), dtype=np.uint8)
        for position, shift in enumerate(byte_shifts(bits)):
            np.bitwise_and(raw >> shift, (1 << bits) - 1, out=values[:, position])
        return values.reshape(-1)[:count]
    groups = -(-count // _GROUP)
    padded = np.zeros(groups * bits, dtype=np.uint8)
    padded[: raw.size] = raw
    group_bytes = np.zeros((groups, 8), dtype=np.uint8)
    group_bytes[:, 8 - bits :] = padded.reshape(groups, bits)
    words = group_bytes.view(">u8").astype(np.uint64)
    shifts = np.arange(_GROUP - 1, -1, -1, dtype=np.uint64) * np.uint64(bits)
    mask = np.uint64((1 << bits) - 1)
    values = (words >> shifts) & mask
    return values.reshape(-1)[:count].astype(np.uint8)


def _unpack_bits(data: bytes, count: int, bits: int) -> np.ndarray:
    """Any width: every bit as a byte, then each index as a dot product with powers of two."""
    stream = np.unpackbits(np.frombuffer(data, dtype=np.uint8), count=count * bits)
    weights = (1 << np.arange(bits - 1, -1, -1)).astype(np.uint32)
    return (stream.reshape(count, bits) @ weights).astype(index_dtype(bits))


@lru_cache(maxsize=16)
def _fixed_length_code(bits: int) -> dict:
    from bitarray.util import int2ba  # the encoder's path only

    return {value: int2ba(value, bits, endian="big") for value in range(1 << bits)}


@lru_cache(maxsize=16)
def _fixed_length_tree(bits: int):
    from bitarray import decodetree

    return decodetree(_fixed_length_code(bits))


def pack_bitarray(indices: np.ndarray, bits: int) -> bytes:
    """Reference packer for any width, using bitarray's C prefix-code encoder."""
    from bitarray import bitarray

    stream = bitarray(endian="big")
    stream.encode(_fixed_length_code(bits), np.asarray(indices).ravel().tolist())
    return stream.tobytes()


def unpack_bitarray(data: bytes, count: int, bits: int) -> np.ndarray:
    """Reference unpacker for any width, using bitarray's C prefix-code decoder."""
    from bitarray import bitarray

    stream = bitarray(endian="big")
    stream.frombytes(bytes(data))
    del stream[count * bits :]
    values = np.fromiter(stream.decode(_fixed_length_tree(bits)), dtype=np.uint16, count=count)
    return values.astype(index_dtype(bits))
