"""Compression methods for the index stream of one strip.

Each method is a small codec in the spirit of numcodecs: ``encode`` turns a strip of
indices (rows x width) into an IDAT payload, ``decode`` turns it back, and
``max_payload`` bounds the payload so that a reader can reject a forged length
before reading it. A method is identified in the file by its one-byte code.
"""

from __future__ import annotations

import lzma
import struct
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable

import deflate as libdeflate
import numpy as np
from zlib_ng import zlib_ng

from ..errors import VQIError
from . import bitpack
from .bands import (
    band_scan,
    field_bits,
    join_runs,
    split_runs,
    unpack_band_fields,
    unpack_fields,
)
from .ordering import adjacency_order

FLAGS_LENGTH = struct.Struct(">I")  # deflate-byte-runs: length of the run-flag stream
LZMA2_MIN_DICT = 4096  # liblzma's smallest dictionary
LZMA2_MAX_DICT = 3 << 29  # liblzma's largest (1.5 GiB): no liblzma encoder matches further back
LZMA2_CHUNK_OUTPUT = 1 << 21  # an LZMA2 chunk expands to at most 2 MiB...
LZMA2_CHUNK_MIN = 4  # ...and takes at least 4 bytes: control, size, one byte of data
ZLIB_FRAMING = 6  # zlib header and Adler-32
DEFLATE_MAX_RATIO = 1032  # a 258-byte match in two bits is deflate's best


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

    @abstractmethod
    def min_payload(self, rows: int, width: int, bits: int) -> int:
        """A lower bound (never above the truth) on the payload of a valid strip of this
        size, so that a reader can reject a file too small for its header unread."""


def unpack_strip(packed: bytes, rows: int, width: int, bits: int) -> np.ndarray:
    """Unpack a stored strip, rejecting a wrong length or non-zero padding bits."""
    return bitpack.unpack_exact(packed, rows * width, bits).reshape(rows, width)


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

    min_payload = max_payload


_ZLIB_FDICT = 0x20  # flag bit of the zlib header (RFC 1950), read as a big-endian u16


def inflate_exact(payload: bytes, size: int, what: str) -> bytes:
    """Inflate a zlib stream that must expand to exactly ``size`` bytes, and no further.

    Output is capped at ``size`` (plus one byte to detect excess), so a zip bomb costs
    no more memory than a valid strip. zlib-ng is a fork of zlib with its API and its
    checks (and the inflater of Pillow's PNG decoder): it inflates literal-heavy strips
    1.3-2x faster than the zlib that CPython links, which sets the decoding time.
    """
    inflater = zlib_ng.decompressobj()
    try:
        data = inflater.decompress(payload, size + 1)
        if len(data) == size and not inflater.eof:
            data += inflater.decompress(inflater.unconsumed_tail, 1)
    except zlib_ng.error as error:
        raise VQIError(f"corrupt {what} stream: {_zlib_problem(payload, error)}") from None
    return check_expansion(data, size, inflater.eof, inflater.unused_data, what)


def check_expansion(data: bytes, size: int, ended: bool, unused: bytes, what: str) -> bytes:
    """Accept a decompressed stream only if it ended, at the end of its input, at ``size``."""
    if len(data) != size or not ended:
        raise VQIError(f"{what} stream does not expand to the declared {size} bytes")
    if unused:
        raise VQIError(f"bytes follow the end of the {what} stream")
    return data


def _zlib_problem(payload: bytes, error: Exception) -> str:
    """zlib's message, or a plain one for a preset dictionary (zlib says only "Error 2")."""
    header = int.from_bytes(payload[:2], "big")
    if len(payload) >= 2 and header % 31 == 0 and header & _ZLIB_FDICT:
        return "it asks for a preset dictionary, which vqi does not define"
    return str(error)


def deflate_minimum(size: int) -> int:
    """The shortest zlib stream that can expand to ``size`` bytes, rounded down."""
    return ZLIB_FRAMING + size // DEFLATE_MAX_RATIO


def deflate_bound(size: int) -> int:
    """zlib's worst case for ``size`` input bytes (stored blocks), rounded up generously."""
    return size + (size >> 10) + 64


def deflate_within_bound(data: bytes, deflate: Callable[[bytes], bytes]) -> bytes:
    """``deflate(data)``, or stored deflate blocks where that would break the bound.

    A decoder rejects a stream over :func:`deflate_bound`, and some legal settings
    (zlib's memLevel 1, small windows with fixed codes) exceed it on incompressible
    data; stored blocks cost 5 bytes per 64 KiB, well within it.
    """
    compressed = deflate(data)
    return compressed if len(compressed) <= deflate_bound(len(data)) else zlib.compress(data, 0)


class Deflate(StripCodec):
    """Method 1: a zlib stream (RFC 1950) of the stored layout."""

    code = 1
    name = "deflate"

    def __init__(self, level: int = 9) -> None:
        self.level = level

    def encode(self, indices: np.ndarray, bits: int) -> bytes:
        return deflate_within_bound(bitpack.pack(indices, bits), self.compress)

    def compress(self, data: bytes) -> bytes:
        return zlib.compress(data, self.level)

    def decode(self, payload: bytes, rows: int, width: int, bits: int) -> np.ndarray:
        size = bitpack.packed_size(rows * width, bits)
        return unpack_strip(inflate_exact(payload, size, "deflate"), rows, width, bits)

    def max_payload(self, rows: int, width: int, bits: int) -> int:
        return deflate_bound(bitpack.packed_size(rows * width, bits))

    def min_payload(self, rows: int, width: int, bits: int) -> int:
        return deflate_minimum(bitpack.packed_size(rows * width, bits))


def split_band_height(payload: bytes | memoryview) -> tuple[int, bytes | memoryview]:
    """The band height byte that starts a banded payload, and the bytes after it."""
    if not payload or payload[0] == 0:
        raise VQIError("banded strip lacks a band height of at least 1")
    return payload[0], payload[1:]


def runs_payload(height: int, flags: bytes, literals: bytes) -> bytes:
    """A banded runs strip: band height, flag stream length, then the two zlib streams."""
    return bytes([height]) + FLAGS_LENGTH.pack(len(flags)) + flags + literals


def split_runs_payload(payload: bytes) -> tuple[int, memoryview, memoryview]:
    """The band height and the flag and literal zlib streams of a banded runs strip."""
    height, rest = split_band_height(memoryview(payload))
    if len(rest) < FLAGS_LENGTH.size:
        raise VQIError("strip ends inside the length of its run flags")
    (flags_length,) = FLAGS_LENGTH.unpack_from(rest)
    flags_end = FLAGS_LENGTH.size + flags_length
    if flags_end > len(rest):
        raise VQIError(f"run flags of {flags_length} bytes overrun the strip")
    return height, rest[FLAGS_LENGTH.size : flags_end], rest[flags_end:]


def inflate_flags(stream: memoryview, count: int) -> np.ndarray:
    """The ``count`` run flags (0/1 as uint8) of a runs strip."""
    flags = inflate_exact(stream, bitpack.packed_size(count, 1), "flags")
    return unpack_fields(flags, count, 1, 1)


def runs_minimum(flag_count: int) -> int:
    """Shortest runs strip of ``flag_count`` flags: the literals may be one zlib stream
    of the first value."""
    flags = deflate_minimum(bitpack.packed_size(flag_count, 1))
    return 1 + FLAGS_LENGTH.size + flags + deflate_minimum(1)


def runs_bound(count: int, literal_bytes: int) -> int:
    """Largest runs strip: ``count`` flags and ``literal_bytes`` of literals, incompressible."""
    flags = deflate_bound(bitpack.packed_size(count, 1))
    return 1 + FLAGS_LENGTH.size + flags + deflate_bound(literal_bytes)


def _trial_deflate(data: bytes) -> bytes:
    """Fast zlib, for ranking candidate layouts: sizes rank as at the final level."""
    return zlib.compress(data, 3)


def _final_deflate(bits: int) -> Callable[[bytes], bytes]:
    """libdeflate, whose streams are standard zlib (any inflater decodes them): level
    12, near-optimal parsing, 3% smaller than zlib level 9 and faster to write; with
    16-bit fields (over 256 colours), which hold twice the bytes, level 10, 2.5-3 times
    faster there for 0.1-0.6% larger strips (k = 1024 and 4096 on three photos)."""
    level = 10 if field_bits(bits) == 16 else 12
    return lambda data: libdeflate.zlib_compress(data, level)


class DeflateByteRuns(StripCodec):
    """Method 2: runs of equal bytes of the packed band-scanned field stream, each deflated.

    With fields of f < 8 bits a byte holds 8 / f pixels; in bands of 8 / f rows a byte
    is one column of a band, and a run is a stretch of identical columns. That finds
    the same redundancy as pixel runs in a few-colour image while the forward fill works
    on a byte, not a pixel, at a time (8, 4 or 2 times fewer values), and a whole-byte
    unpack follows; with 8- and 16-bit fields a run is a stretch of equal pixel bytes.
    """

    code = 2
    name = "deflate-byte-runs"

    @staticmethod
    def band_heights(bits: int) -> tuple[int, ...]:
        """Heights the encoder tries: 8 / f wins below 8-bit fields; at 8 bits and more,
        8-row bands save ~0.3% but their reordering costs more to decode than it saves."""
        return (1, 2, 4, 8) if field_bits(bits) < 8 else (1, 2, 4)

    def encode(self, indices: np.ndarray, bits: int) -> bytes:
        """The band height is chosen by trial with a fast deflate and only the winner
        is compressed at full strength: the ranking hardly changes (0.05% larger files
        on the bench photos at k = 16, none at k = 256) for a fraction of the time."""
        heights = self.band_heights(bits)
        if len(heights) > 1:
            trial = lambda height: len(self.encode_bands(indices, bits, height, _trial_deflate))  # noqa: E731
            heights = (min(heights, key=trial),)
        return self.encode_bands(indices, bits, heights[0], _final_deflate(bits))

    @staticmethod
    def encode_bands(
        indices: np.ndarray, bits: int, height: int, deflate: Callable[[bytes], bytes]
    ) -> bytes:
        packed = bitpack.pack(band_scan(indices, height), field_bits(bits))
        starts, literals = split_runs(np.frombuffer(packed, dtype=np.uint8))
        flags = deflate_within_bound(bitpack.pack(starts, 1), deflate)
        return runs_payload(height, flags, deflate_within_bound(literals.tobytes(), deflate))

    def decode(self, payload: bytes, rows: int, width: int, bits: int) -> np.ndarray:
        height, flag_stream, literal_stream = split_runs_payload(payload)
        count, field = rows * width, field_bits(bits)
        size = bitpack.packed_size(count, field)
        starts = inflate_flags(flag_stream, size)
        literal_count = int(np.count_nonzero(starts))
        data = inflate_exact(literal_stream, literal_count, "literals")
        literals = np.frombuffer(data, dtype=np.uint8)
        packed = literals if literal_count == size else join_runs(starts, literals)
        return unpack_band_fields(packed, rows, width, height, field, bits)

    def max_payload(self, rows: int, width: int, bits: int) -> int:
        size = bitpack.packed_size(rows * width, field_bits(bits))
        return runs_bound(size, size)

    def min_payload(self, rows: int, width: int, bits: int) -> int:
        return runs_minimum(bitpack.packed_size(rows * width, field_bits(bits)))


def lzma2_exact(payload: bytes, size: int, what: str) -> bytes:
    """Decode a raw LZMA2 stream that must expand to exactly ``size`` bytes, and no further.

    The dictionary is sized by the strip (no match can reach further back), capped by
    what ``payload`` can expand to and by liblzma's largest, so a forged strip size
    costs no allocation; the output is capped at ``size`` + 1 bytes, so a bomb costs no
    more than a valid strip.
    """
    reachable = (len(payload) // LZMA2_CHUNK_MIN + 1) * LZMA2_CHUNK_OUTPUT
    dictionary = max(min(size, reachable, LZMA2_MAX_DICT), LZMA2_MIN_DICT)
    filters = [{"id": lzma.FILTER_LZMA2, "dict_size": dictionary}]
    try:
        decompressor = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=filters)
        data = decompressor.decompress(payload, size + 1)
    except lzma.LZMAError as error:
        raise VQIError(f"corrupt {what} stream: {error}") from None
    return check_expansion(data, size, decompressor.eof, decompressor.unused_data, what)


def lzma2_minimum(size: int) -> int:
    """The shortest LZMA2 stream that can expand to ``size`` bytes: its chunks, then the
    end marker."""
    return LZMA2_CHUNK_MIN * -(-size // LZMA2_CHUNK_OUTPUT) + 1


def renumber(indices: np.ndarray, size: int) -> tuple[np.ndarray, bytes]:
    """Codes for the indices and the stored table (code -> index) of the LZMA methods."""
    if not size:
        return indices, b""
    order = adjacency_order(indices, size)
    code_of = np.empty(size, dtype=np.uint8)
    code_of[order] = np.arange(size)
    return code_of[indices], order.astype(np.uint8).tobytes()


def lzma2_compress(packed: bytes, literal_context_bits: int) -> bytes:
    """A raw LZMA2 stream at the strongest preset, its dictionary the size of the strip."""
    options = {"preset": 9 | lzma.PRESET_EXTREME, "lc": literal_context_bits, "lp": 0, "pb": 0}
    dictionary = max(min(len(packed), LZMA2_MAX_DICT), LZMA2_MIN_DICT)
    filters = [{"id": lzma.FILTER_LZMA2, **options, "dict_size": dictionary}]
    return lzma.compress(packed, format=lzma.FORMAT_RAW, filters=filters)


class LzmaPackedBands(StripCodec):
    """Method 3: renumbered, band-scanned codes in fields of a width named per strip, as raw LZMA2.

    Indices are renumbered so that values which often touch get neighbouring codes
    (the table is stored, the palette is untouched), because LZMA predicts each byte
    from the high bits of the previous one; bands bring the pixel above next to the
    current one. From 3 bits on a code takes one byte or two (LZMA's literal context
    works on whole bytes) in 32-row bands. 1- and 2-bit codes would leave a byte's
    high bits always zero, so they are packed 8 or 4 to a byte in bands of 8 or 4
    rows, a byte being one column of a band: few-colour images come out 10-20%
    smaller, below WebP-lossless. Decoding costs an LZMA2 decode, several times
    slower than inflate.
    """

    code = 3
    name = "lzma-packed-bands"
    band_height = 32

    @staticmethod
    def table_size(bits: int) -> int:
        """Entries of the renumbering table: 2**b for b <= 8, none (identity) above."""
        return 1 << bits if bits <= 8 else 0

    @staticmethod
    def byte_field(bits: int) -> int:
        """One byte a code, or two: the widest field a strip may name."""
        return 8 if bits <= 8 else 16

    def encode(self, indices: np.ndarray, bits: int) -> bytes:
        field = field_bits(bits) if bits <= 2 else self.byte_field(bits)
        height = 8 // field if 0 < field < 8 else self.band_height
        codes, table = renumber(indices, self.table_size(bits))
        packed = bitpack.pack(band_scan(codes, height), field)
        context_bits = 0 if field < 8 else 4  # packed bytes mix columns: no useful context
        return bytes([height, field]) + table + lzma2_compress(packed, context_bits)

    def decode(self, payload: bytes, rows: int, width: int, bits: int) -> np.ndarray:
        height, rest = split_band_height(payload)
        allowed = (field_bits(bits), self.byte_field(bits))
        if not rest or rest[0] not in allowed:
            raise VQIError(
                f"field width of the strip is not one of {allowed} for {bits}-bit indices"
            )
        field, size = rest[0], self.table_size(bits)
        table = np.frombuffer(rest[1 : 1 + size], dtype=np.uint8)
        if size and not np.array_equal(np.sort(table), np.arange(size)):
            raise VQIError("renumbering table is not a permutation of the index values")
        stream = rest[1 + size :]
        data = lzma2_exact(stream, bitpack.packed_size(rows * width, field), self.name)
        codes = unpack_band_fields(data, rows, width, height, field, bits)
        return table[codes] if size else codes

    def max_payload(self, rows: int, width: int, bits: int) -> int:
        packed = bitpack.packed_size(rows * width, self.byte_field(bits))
        return 2 + self.table_size(bits) + deflate_bound(packed)

    def min_payload(self, rows: int, width: int, bits: int) -> int:
        """The narrowest field width the method allows gives the shortest field stream."""
        packed = bitpack.packed_size(rows * width, field_bits(bits))
        return 2 + self.table_size(bits) + lzma2_minimum(packed)


COMPRESSION_METHODS: dict[str, StripCodec] = {
    codec.name: codec
    for codec in (
        Stored(),
        Deflate(),
        DeflateByteRuns(),
        LzmaPackedBands(),
    )
}
DEFAULT_COMPRESSION = "deflate-byte-runs"


def codec_by_name(name: str) -> StripCodec:
    try:
        return COMPRESSION_METHODS[name]
    except KeyError:
        known = ", ".join(COMPRESSION_METHODS)
        raise VQIError(f"unknown compression {name!r}; choose one of {known}") from None


def codec_by_code(code: int) -> StripCodec:
    for codec in COMPRESSION_METHODS.values():
        if codec.code == code:
            return codec
    raise VQIError(f"unsupported compression method {code} (written by a newer encoder?)")
