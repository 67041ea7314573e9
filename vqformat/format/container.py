"""The .vqi byte layout: signature, CRC-framed chunks, the header and the palette.

This module frames bytes; it knows nothing of how a palette was fitted or how an
index stream is compressed. See spec/vqi.md for the authoritative description.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from ..errors import VQIError, check_integer

SIGNATURE = b"\x89VQI\r\n\x1a\n"
FORMAT_VERSION = 1
MAX_DIMENSION = 2**31 - 1
MAX_COLORS = 65536
MAX_CHUNK_LENGTH = 2**31 - 1
CHANNEL_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}

HEAD = b"HEAD"
PLTE = b"PLTE"
IDAT = b"IDAT"
IEND = b"IEND"

_HEAD_LAYOUT = struct.Struct(">BBBBIIII")
_CHUNK_PREFIX = struct.Struct(">I4s")
_CRC = struct.Struct(">I")
_READ_PIECE = 1 << 20  # never trust a length field with one big allocation


def bits_for_colors(colors: int) -> int:
    """Bits per index for a palette of ``colors`` entries: ceil(log2 colors), 0 for one colour."""
    return (colors - 1).bit_length()


@dataclass(frozen=True)
class Header:
    """The fields of the HEAD chunk, validated on construction."""

    width: int
    height: int
    channels: int
    colors: int
    compression: int
    strip_rows: int
    version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        newer = isinstance(self.version, int) and self.version > FORMAT_VERSION
        why = "written by a newer encoder? this decoder reads version 1 only"
        check_integer(
            "version",
            self.version,
            FORMAT_VERSION,
            FORMAT_VERSION,
            why if newer else "no VQI version 0 exists, the file is damaged",
        )
        check_integer("channel count", self.channels, 1, 4)
        check_integer("width", self.width, 1, MAX_DIMENSION)
        check_integer("height", self.height, 1, MAX_DIMENSION)
        check_integer("palette size", self.colors, 1, MAX_COLORS)
        check_integer("strip height", self.strip_rows, 1, self.height)
        check_integer("compression method", self.compression, 0, 255)

    @property
    def mode(self) -> str:
        """Pillow-style mode name of the pixels: L, LA, RGB or RGBA."""
        return CHANNEL_MODES[self.channels]

    @property
    def bits_per_index(self) -> int:
        return bits_for_colors(self.colors)

    @property
    def pixel_count(self) -> int:
        return self.width * self.height

    @property
    def strip_count(self) -> int:
        return -(-self.height // self.strip_rows)

    def strip_span(self, strip: int) -> tuple[int, int]:
        """First row and row count of strip number ``strip``."""
        first = strip * self.strip_rows
        return first, min(self.strip_rows, self.height - first)

    def to_bytes(self) -> bytes:
        return _HEAD_LAYOUT.pack(
            self.version,
            self.channels,
            self.bits_per_index,
            self.compression,
            self.width,
            self.height,
            self.colors,
            self.strip_rows,
        )

    @classmethod
    def from_bytes(cls, data: bytes, offset: int = 0) -> Header:
        if len(data) != _HEAD_LAYOUT.size:
            raise VQIError(
                f"HEAD chunk holds {len(data)} bytes, expected {_HEAD_LAYOUT.size}", offset
            )
        version, channels, bits, compression, width, height, colors, strip_rows = (
            _HEAD_LAYOUT.unpack(data)
        )
        try:
            header = cls(width, height, channels, colors, compression, strip_rows, version)
        except VQIError as error:
            raise VQIError(str(error), offset) from None
        if bits != header.bits_per_index:
            raise VQIError(
                f"bits per index is {bits} but a palette of {colors} colours "
                f"needs {header.bits_per_index}",
                offset,
            )
        return header


def is_critical(chunk_type: bytes) -> bool:
    """PNG's rule: an upper-case first letter marks a chunk a decoder must understand."""
    return not chunk_type[0] & 0x20


def chunk_bytes(chunk_type: bytes, data: bytes) -> bytes:
    """One chunk: big-endian length, type, data, CRC-32 of type and data."""
    if len(data) > MAX_CHUNK_LENGTH:
        raise VQIError(f"{chunk_type.decode()} chunk of {len(data)} bytes exceeds the chunk limit")
    crc = zlib.crc32(data, zlib.crc32(chunk_type))
    return _CHUNK_PREFIX.pack(len(data), chunk_type) + data + _CRC.pack(crc)


class Writer:
    """Writes a file chunk by chunk, so index strips can be produced one at a time."""

    def __init__(
        self, out: BinaryIO, header: Header, palette: bytes, ancillary: Iterable[bytes] = ()
    ) -> None:
        """``ancillary``: framed chunks (metadata) written between HEAD and PLTE."""
        if len(palette) != header.colors * header.channels:
            raise VQIError(
                f"palette holds {len(palette)} bytes, expected "
                f"{header.colors} entries of {header.channels}"
            )
        self._out = out
        self._header = header
        self._strips_written = 0
        out.write(SIGNATURE)
        out.write(chunk_bytes(HEAD, header.to_bytes()))
        for chunk in ancillary:
            out.write(chunk)
        out.write(chunk_bytes(PLTE, bytes(palette)))

    def write_strip(self, payload: bytes) -> None:
        if self._strips_written == self._header.strip_count:
            raise VQIError("all strips are already written")
        self._out.write(chunk_bytes(IDAT, payload))
        self._strips_written += 1

    def close(self) -> None:
        if self._strips_written != self._header.strip_count:
            raise VQIError(f"wrote {self._strips_written} of {self._header.strip_count} strips")
        self._out.write(chunk_bytes(IEND, b""))


class ChunkSink(Protocol):
    """Takes the ancillary chunks a Reader meets before the first IDAT."""

    def limit(self, chunk_type: bytes) -> int | None:
        """The longest data of this chunk worth reading (a longer chunk is skipped unread
        and taken as None, so a forged length costs nothing), or None to skip it."""

    def take(self, chunk_type: bytes, data: bytes | None, at: int) -> None:
        """One chunk's data (None if over the limit), with the offset of its start."""


class Reader:
    """Reads a file front to back with ``read()`` only, so pipes and sockets work.

    Construction reads the signature and HEAD chunk and nothing more. Every chunk's
    CRC is checked unless ``check_crc`` is false (for fuzzing only). Reading stops at
    IEND; bytes after it are never read.

    ``sink`` is given the ancillary chunks met before the first IDAT that it asks for,
    one at a time as they are read, so it can parse each and keep only what it needs.
    """

    def __init__(
        self, stream: BinaryIO, check_crc: bool = True, sink: ChunkSink | None = None
    ) -> None:
        self._stream = stream
        self._check_crc = check_crc
        self._sink = sink
        self._pending: tuple[int, bytes, int] | None = None
        self.offset = 0
        signature = self._read_exact(len(SIGNATURE), "signature")
        if signature != SIGNATURE:
            raise VQIError("not a VQI file (bad signature)", 0)
        length, chunk_type, at = self._read_chunk_prefix()
        if chunk_type != HEAD:
            raise VQIError(f"first chunk is {chunk_type!r}, expected HEAD", at)
        data = self._read_chunk_body(length, chunk_type, at, limit=_HEAD_LAYOUT.size)
        self.header = Header.from_bytes(data, at)

    def read_palette(self) -> bytes:
        """Skip ancillary chunks up to PLTE and return its bytes."""
        size = self.header.colors * self.header.channels
        return self._next_critical(PLTE, size, exact=True)

    def iter_strips(self, max_payload: Callable[[int], int]) -> Iterator[bytes]:
        """Yield each strip's IDAT payload, then check that IEND follows.

        ``max_payload(rows)`` bounds the payload of a strip of that many rows, so a
        forged length is rejected before anything of that size is read.
        """
        for strip in range(self.header.strip_count):
            rows = self.header.strip_span(strip)[1]
            yield self._next_critical(IDAT, max_payload(rows))
            self._sink = None  # metadata lives before the first IDAT (spec §3.3)
        self._next_critical(IEND, 0, exact=True)

    def read_to_strips(self) -> None:
        """After ``read_palette``: read the ancillary chunks before the first IDAT (so
        the sink has had them all), leaving that chunk for ``iter_strips``."""
        while True:
            prefix = self._read_chunk_prefix()
            if is_critical(prefix[1]):
                self._pending = prefix
                return
            self._read_ancillary(*prefix)

    def _next_critical(self, expected: bytes, limit: int, exact: bool = False) -> bytes:
        """Skip ancillary chunks and return the data of the critical chunk ``expected``."""
        while True:
            length, chunk_type, at = self._read_chunk_prefix()
            if chunk_type == expected:
                if exact and length != limit:
                    raise VQIError(
                        f"{expected.decode()} chunk holds {length} bytes, expected {limit}", at
                    )
                return self._read_chunk_body(length, chunk_type, at, limit)
            if is_critical(chunk_type):
                raise VQIError(
                    f"unexpected critical chunk {chunk_type.decode()!r} where "
                    f"{expected.decode()} was due",
                    at,
                )
            self._read_ancillary(length, chunk_type, at)

    def _read_ancillary(self, length: int, chunk_type: bytes, at: int) -> None:
        """Skip an ancillary chunk, or hand it to the sink if the sink asks for it."""
        limit = self._sink.limit(chunk_type) if self._sink else None
        if limit is None:
            self._read_chunk_body(length, chunk_type, at, limit=None)
            return
        wanted = length <= limit
        data = self._read_chunk_body(length, chunk_type, at, limit=length if wanted else None)
        self._sink.take(chunk_type, data if wanted else None, at)

    def _read_chunk_prefix(self) -> tuple[int, bytes, int]:
        if self._pending is not None:
            prefix, self._pending = self._pending, None
            return prefix
        at = self.offset
        length, chunk_type = _CHUNK_PREFIX.unpack(self._read_exact(8, "chunk header"))
        if not chunk_type.isalpha():
            raise VQIError(f"invalid chunk type {chunk_type!r}", at + 4)
        if length > MAX_CHUNK_LENGTH:
            raise VQIError(f"chunk length {length} exceeds the limit", at)
        return length, chunk_type, at

    def _read_chunk_body(self, length: int, chunk_type: bytes, at: int, limit: int | None) -> bytes:
        """Read (or, with no ``limit``, stream past) a chunk's data and check its CRC."""
        name = chunk_type.decode()
        crc = zlib.crc32(chunk_type)
        if limit is None:
            crc = self._skip(length, crc)
            data = b""
        else:
            if length > limit:
                raise VQIError(
                    f"{name} chunk declares {length} bytes, at most {limit} are possible", at
                )
            data = self._read_exact(length, f"{name} chunk")
            crc = zlib.crc32(data, crc)
        (stored_crc,) = _CRC.unpack(self._read_exact(4, f"{name} chunk CRC"))
        if self._check_crc and crc != stored_crc:
            raise VQIError(f"CRC mismatch in {name} chunk", at)
        return data

    def _skip(self, length: int, crc: int) -> int:
        while length:
            piece = self._read_exact(min(length, _READ_PIECE), "ancillary chunk")
            crc = zlib.crc32(piece, crc)
            length -= len(piece)
        return crc

    def _read_exact(self, size: int, what: str) -> bytes:
        pieces = []
        remaining = size
        while remaining:
            request = min(remaining, _READ_PIECE)
            piece = self._stream.read(request)
            if not piece:
                raise VQIError(f"file ends inside the {what}", self.offset)
            if not isinstance(piece, (bytes, bytearray)) or len(piece) > request:
                raise VQIError(f"the stream must be binary and return at most {request} bytes")
            pieces.append(piece)
            remaining -= len(piece)
            self.offset += len(piece)
        return b"".join(pieces)
