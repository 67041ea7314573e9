"""Compression methods for the index stream of one strip.

Each method is a small codec in the spirit of numcodecs: ``encode`` turns a strip of
indices (rows x width) into an IDAT payload, ``decode`` turns it back, and
``max_payload`` bounds the payload so that a reader can reject a forged length
before reading it. A method is identified in the file by its one-byte code.
"""

from __future__ import annotations

import zlib
from abc import ABC, abstractmethod

import numpy as np

from . import bitpack
from .errors import VQIError


class StripCodec(ABC):
    """One compression method of the index stream."""

    code: int
    name: str

    @abstractmethod
    def encode(self, indices: np.ndarray, bits: int) -> bytes:
        """Compress a (rows, width) array of indices below 2**bits."""

    @abstractmethod
    def decode(self, payload: bytes, rows: int, width: int, bits: int) -> np.ndarray:
        """Return the (rows, width) indices; raise VQIError if the payload is malformed."""

    @abstractmethod
    def max_payload(self, rows: int, width: int, bits: int) -> int:
        """The largest payload a valid strip of this size can have."""


def unpack_strip(packed: bytes, rows: int, width: int, bits: int) -> np.ndarray:
    """Unpack a stored strip, rejecting a wrong length or non-zero padding bits."""
    count = rows * width
    expected = bitpack.packed_size(count, bits)
    if len(packed) != expected:
        raise VQIError(f"strip holds {len(packed)} bytes of indices, expected {expected}")
    padding = expected * 8 - count * bits
    if padding and packed[-1] & ((1 << padding) - 1):
        raise VQIError("padding bits after the last index are not zero")
    return bitpack.unpack(packed, count, bits).reshape(rows, width)


class Stored(StripCodec):
    """Method 0: the bit-packed indices as they are; strips can be located without decoding."""

    code = 0
    name = "stored"

    def encode(self, indices: np.ndarray, bits: int) -> bytes:
        return bitpack.pack(indices, bits)

    def decode(self, payload: bytes, rows: int, width: int, bits: int) -> np.ndarray:
        return unpack_strip(payload, rows, width, bits)

    def max_payload(self, rows: int, width: int, bits: int) -> int:
        return bitpack.packed_size(rows * width, bits)


_ZLIB_FDICT = 0x20  # flag bit of the zlib header (RFC 1950), read as a big-endian u16


def inflate_exact(payload: bytes, size: int, what: str) -> bytes:
    """Inflate a zlib stream that must expand to exactly ``size`` bytes, and no further.

    Output is capped at ``size`` (plus one byte to detect excess), so a zip bomb costs
    no more memory than a valid strip.
    """
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(payload, size + 1)
        if len(data) == size and not inflater.eof:
            data += inflater.decompress(inflater.unconsumed_tail, 1)
    except zlib.error as error:
        raise VQIError(f"corrupt {what} stream: {_zlib_problem(payload, error)}") from None
    if len(data) != size or not inflater.eof:
        raise VQIError(f"{what} stream does not expand to the declared {size} bytes")
    if inflater.unused_data:
        raise VQIError(f"bytes follow the end of the {what} stream")
    return data


def _zlib_problem(payload: bytes, error: zlib.error) -> str:
    """zlib's message, or a plain one for a preset dictionary (zlib says only "Error 2")."""
    header = int.from_bytes(payload[:2], "big")
    if len(payload) >= 2 and header % 31 == 0 and header & _ZLIB_FDICT:
        return "it asks for a preset dictionary, which vqi does not define"
    return str(error)


def deflate_bound(size: int) -> int:
    """zlib's worst case for ``size`` input bytes (stored blocks), rounded up generously."""
    return size + (size >> 10) + 64


class Deflate(StripCodec):
    """Method 1: a zlib stream (RFC 1950) of the stored layout."""

    code = 1
    name = "deflate"

    def __init__(self, level: int = 9) -> None:
        self.level = level

    def encode(self, indices: np.ndarray, bits: int) -> bytes:
        return zlib.compress(bitpack.pack(indices, bits), self.level)

    def decode(self, payload: bytes, rows: int, width: int, bits: int) -> np.ndarray:
        size = bitpack.packed_size(rows * width, bits)
        return unpack_strip(inflate_exact(payload, size, "deflate"), rows, width, bits)

    def max_payload(self, rows: int, width: int, bits: int) -> int:
        return deflate_bound(bitpack.packed_size(rows * width, bits))


METHODS: dict[str, StripCodec] = {codec.name: codec for codec in (Stored(), Deflate())}
DEFAULT_METHOD = "deflate"


def codec_by_name(name: str) -> StripCodec:
    try:
        return METHODS[name]
    except KeyError:
        known = ", ".join(METHODS)
        raise VQIError(f"unknown compression {name!r}; choose one of {known}") from None


def codec_by_code(code: int) -> StripCodec:
    for codec in METHODS.values():
        if codec.code == code:
            return codec
    raise VQIError(f"unsupported compression method {code} (written by a newer encoder?)")
