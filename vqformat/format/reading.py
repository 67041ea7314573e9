"""Reading .vqi files: header, palette and index strips, and pixels by palette look-up.

Everything a decoder needs lives in this layer (numpy, the standard library and
zlib-ng): no palette fitting is imported, so ``decode`` and ``read_info`` start fast.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from ..errors import VQIError
from . import methods
from .bitpack import index_dtype
from .container import IDAT, IEND, Header, Reader
from .metadata import METADATA_CHUNKS, Metadata, MetadataParser

Source = bytes | bytearray | memoryview | str | os.PathLike | BinaryIO

CHUNK_PREFIX = struct.Struct(">I4s")  # a chunk's length and type
CHUNK_FRAMING = 12  # length, type and CRC

CHECKED_PIXELS = 1 << 22
"""Images from this size on are checked for plausible strips before their output is
allocated; smaller ones cost less than a check, and the reader names their fault."""

MAX_PIXELS = 1 << 30
"""Default limit on width x height accepted by the decoder (pass ``max_pixels`` to change)."""


@dataclass(frozen=True)
class VQIInfo:
    """What the header says about a file, available without decoding any pixels."""

    width: int
    height: int
    mode: str
    channels: int
    colors: int
    bits_per_index: int
    compression: str
    strip_rows: int
    version: int
    metadata: tuple[str, ...] | None = None
    """Types of the metadata chunks before the first IDAT, in file order (spec §3.3);
    None unless ``read_info(..., metadata=True)`` looked."""


@contextmanager
def _binary_stream(source: Source) -> Iterator[BinaryIO]:
    if isinstance(source, memoryview) and not source.c_contiguous:
        source = source.tobytes()
    if isinstance(source, (bytes, bytearray, memoryview)):
        yield io.BytesIO(source)
    elif isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as stream:  # OSErrors stay OSErrors, as in open()
            yield stream
    elif hasattr(source, "read"):
        yield source
    else:
        raise VQIError(f"cannot read a VQI file from {type(source).__name__}")


def _info(header: Header, metadata: tuple[str, ...] | None = None) -> VQIInfo:
    return VQIInfo(
        header.width,
        header.height,
        header.mode,
        header.channels,
        header.colors,
        header.bits_per_index,
        methods.codec_by_code(header.compression).name,
        header.strip_rows,
        header.version,
        metadata,
    )


def read_info(source: Source, *, check_crc: bool = True, metadata: bool = False) -> VQIInfo:
    """Read the header only; no pixel data is read or decoded.

    With ``metadata`` it reads on to the first IDAT and ``VQIInfo.metadata`` lists the
    metadata chunk types present (skipped, not parsed: see ``read_metadata``).
    ``check_crc=False`` exists for fuzzing only, as for ``decode``.
    """
    with _binary_stream(source) as stream:
        if not metadata:
            return _info(Reader(stream, check_crc=check_crc).header)
        present = _ChunkTypes()
        reader = Reader(stream, check_crc=check_crc, sink=present)
        reader.read_palette()
        reader.read_to_strips()
        return _info(reader.header, tuple(present.types))


class _ChunkTypes:
    """A chunk sink that lists the metadata chunk types present, reading none of them."""

    def __init__(self) -> None:
        self.types: list[str] = []

    def limit(self, chunk_type: bytes) -> int | None:
        return 0 if chunk_type in METADATA_CHUNKS else None

    def take(self, chunk_type: bytes, data: bytes | None, at: int) -> None:
        self.types.append(chunk_type.decode())


def read_metadata(source: Source) -> Metadata:
    """The colour profile, EXIF, XMP and text of a file, reading no pixel data.

    A malformed metadata chunk is dropped with a ``MetadataWarning`` (spec §3.3);
    each is bounded in size, so hostile chunks cost little memory.
    """
    with _binary_stream(source) as stream:
        parser = MetadataParser()
        reader = Reader(stream, sink=parser)
        reader.read_palette()
        return collect_metadata(reader, parser)


def collect_metadata(reader: Reader, parser: MetadataParser) -> Metadata:
    """The metadata of a reader made with ``sink=parser`` and past PLTE; it is left
    before the first IDAT, so ``iter_index_strips`` can follow."""
    reader.read_to_strips()
    return parser.metadata()


def _decode_strip(codec: methods.StripCodec, header: Header, strip: int, payload: bytes):
    """The (rows, W) indices of one strip, each checked against the palette."""
    rows = header.strip_span(strip)[1]
    bits = header.bits_per_index
    indices = codec.decode(payload, rows, header.width, bits)
    if header.colors < 1 << bits and indices.size and int(indices.max()) >= header.colors:
        raise VQIError(
            f"index {int(indices.max())} in strip {strip} is outside the "
            f"palette of {header.colors} colours"
        )
    return indices


def _strip_payloads(reader: Reader) -> Iterator[bytes]:
    """Each strip's IDAT payload; a length above the method's bound is rejected unread."""
    header = reader.header
    codec = methods.codec_by_code(header.compression)
    width, bits = header.width, header.bits_per_index
    return reader.iter_strips(lambda rows: codec.max_payload(rows, width, bits))


def iter_index_strips(
    reader: Reader, wanted: range | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (output row, indices of the wanted rows) for each strip holding wanted rows.

    ``reader`` must have read the palette; ``wanted`` (a range of step >= 1) defaults
    to every row, when the output row is the strip's first row. Only one strip is held
    at a time, so callers that place strips into their own buffer bound memory. Strips
    before the wanted rows are read (their CRC checked) but not decoded, and reading
    stops after the last strip needed (spec §6.1).
    """
    header = reader.header
    wanted = range(header.height) if wanted is None else wanted
    codec = methods.codec_by_code(header.compression)
    if not wanted:
        return
    last_needed = wanted[-1] // header.strip_rows
    for strip, payload in enumerate(_strip_payloads(reader)):
        first, rows = header.strip_span(strip)
        start = _first_at_or_after(wanted, first)
        stop = _first_at_or_after(wanted, first + rows)
        if start < stop:
            indices = _decode_strip(codec, header, strip, payload)
            low, high = wanted[start] - first, wanted[stop - 1] - first + 1
            yield start, indices[low : high : wanted.step]
        if strip == last_needed < header.strip_count - 1:
            return  # the rest is not needed; a full decode goes on to check IEND


def iter_decodable_strips(reader: Reader) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (first row, indices) of every strip whose data decodes, skipping the
    others, until the chunk layout itself breaks (a truncated file, a forged length).

    For loading damaged files: strips decode independently, so one bad strip need not
    cost the rest. ``reader`` must have read the palette; one without CRC checks also
    keeps strips whose flipped bits still decode.
    """
    header = reader.header
    codec = methods.codec_by_code(header.compression)
    for strip, payload in enumerate(_strip_payloads(reader)):
        try:
            indices = _decode_strip(codec, header, strip, payload)
        except VQIError:
            continue
        yield header.strip_span(strip)[0], indices


def _first_at_or_after(wanted: range, row: int) -> int:
    """Position in ``wanted`` (a range of step >= 1) of its first row >= ``row``."""
    return min(len(wanted), max(0, -(-(row - wanted.start) // wanted.step)))


def _wanted_rows(header: Header, rows: slice | None) -> range:
    if rows is None:
        return range(header.height)
    if not isinstance(rows, slice):
        raise VQIError(f"rows must be a slice, got {type(rows).__name__}")
    for part in (rows.start, rows.stop, rows.step):
        if part is not None and not isinstance(part, (int, np.integer)):
            raise VQIError(f"rows must be a slice of integers, got {rows}")
    if rows.step == 0:
        raise VQIError("rows must go top to bottom (step >= 1), got step 0")
    wanted = range(header.height)[rows]
    if wanted.step < 1:
        raise VQIError(f"rows must go top to bottom (step >= 1), got step {wanted.step}")
    return wanted


def _open_reader(
    stream: BinaryIO, max_pixels: int | None, check_crc: bool, rows: slice | None
) -> tuple[Reader, range]:
    """A reader past HEAD, and the rows to decode, checked against the pixel limit."""
    reader = Reader(stream, check_crc=check_crc)
    header = reader.header
    wanted = _wanted_rows(header, rows)
    rows_held = max(len(wanted), min(header.strip_rows, header.height))  # output or a strip
    if max_pixels is not None and rows_held * header.width > max_pixels:
        what = "image" if len(wanted) == header.height else "band of rows, or a strip,"
        raise VQIError(
            f"{what} of {header.width}x{rows_held} pixels exceeds the limit of "
            f"{max_pixels} pixels (pass max_pixels to raise it)"
        )
    methods.codec_by_code(header.compression)
    check_plausible(stream, header)
    return reader, wanted


def check_plausible(stream: BinaryIO, header: Header) -> None:
    """Reject a seekable file whose IDAT chunks cannot hold the image its header
    declares, before its output is allocated: a few bytes declaring billions of pixels
    then cost nothing. Only chunk prefixes are read (by seeking); the stream is left
    where it was. Each IDAT must reach its method's ``min_payload``, and there must be
    one a strip before IEND or the end. A non-seekable stream is left to the reader,
    which holds one strip at a time; so is an image below ``CHECKED_PIXELS``.
    """
    seekable = getattr(stream, "seekable", None)
    if header.pixel_count < CHECKED_PIXELS or seekable is None or not seekable():
        return
    start = stream.tell()
    try:
        _check_strip_chunks(stream, header, start, stream.seek(0, os.SEEK_END))
    finally:
        stream.seek(start)


def _check_strip_chunks(stream: BinaryIO, header: Header, at: int, end: int) -> None:
    codec = methods.codec_by_code(header.compression)
    strips = 0
    while strips < header.strip_count and at + CHUNK_FRAMING <= end:
        stream.seek(at)
        length, chunk_type = CHUNK_PREFIX.unpack(stream.read(CHUNK_PREFIX.size))
        if chunk_type == IEND or at + CHUNK_FRAMING + length > end:
            break
        if chunk_type == IDAT:
            rows = header.strip_span(strips)[1]
            least = codec.min_payload(rows, header.width, header.bits_per_index)
            if length < least:
                raise VQIError(
                    f"IDAT of strip {strips} holds {length} bytes; a strip of "
                    f"{header.width}x{rows} pixels needs at least {least}",
                    at,
                )
            strips += 1
        at += CHUNK_FRAMING + length
    if strips < header.strip_count:
        raise VQIError(
            f"file holds {strips} complete IDAT chunks, its header declares "
            f"{header.strip_count} strips",
            at,
        )


def _image_array(shape: tuple[int, ...], dtype: type[np.generic]) -> np.ndarray:
    """The output buffer; its size passed the pixel limit, if any, but may still not fit.

    A valid file too large for this machine is not a malformed one: it raises
    MemoryError (numpy says ValueError for sizes beyond the address space).
    """
    try:
        return np.empty(shape, dtype=dtype)
    except (MemoryError, ValueError):
        raise MemoryError(f"cannot allocate an image of shape {shape}: out of memory") from None


def _palette_array(reader: Reader) -> np.ndarray:
    header = reader.header
    return np.frombuffer(reader.read_palette(), dtype=np.uint8).reshape(
        header.colors, header.channels
    )


def decode_indexed(
    source: Source,
    *,
    max_pixels: int | None = MAX_PIXELS,
    check_crc: bool = True,
    rows: slice | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Decode to (palette, indices): a (k, C) uint8 palette and (H, W) indices.

    Indices are uint8 for k <= 256, uint16 otherwise. ``rows`` (a slice) decodes only
    those rows and only the strips holding them. ``check_crc=False`` exists for
    fuzzing only.
    """
    with _binary_stream(source) as stream:
        reader, wanted = _open_reader(stream, max_pixels, check_crc, rows)
        header = reader.header
        palette = _palette_array(reader)
        indices = _image_array((len(wanted), header.width), index_dtype(header.bits_per_index))
        for at, strip in iter_index_strips(reader, wanted):
            indices[at : at + len(strip)] = strip
    return palette, indices


LOOKUP_PIXELS = 1 << 16
"""Pixels looked up at once: ``take`` widens its indices to int64, 8 bytes each."""


def look_up(palette: np.ndarray, indices: np.ndarray, out: np.ndarray) -> None:
    """``out[...] = palette[indices]``, a few rows at a time.

    ``take`` along the palette's first axis writes the output several times faster
    than fancy indexing; "clip" skips its buffered bounds check (the indices were
    checked against the palette already).
    """
    rows = max(1, LOOKUP_PIXELS // max(1, indices.shape[1]))
    for first in range(0, len(indices), rows):
        block = slice(first, first + rows)
        np.take(palette, indices[block], axis=0, out=out[block], mode="clip")


def decode(
    source: Source,
    *,
    max_pixels: int | None = MAX_PIXELS,
    check_crc: bool = True,
    rows: slice | None = None,
) -> np.ndarray:
    """Decode to a uint8 array: (H, W) for grey files, (H, W, C) for LA, RGB and RGBA.

    The output is allocated once and filled strip by strip, so the peak memory is the
    output plus one strip. ``rows`` (a slice) decodes only those rows and only the
    strips holding them: ``decode(f, rows=slice(a, b))`` equals ``decode(f)[a:b]``.
    """
    with _binary_stream(source) as stream:
        reader, wanted = _open_reader(stream, max_pixels, check_crc, rows)
        header = reader.header
        palette = _palette_array(reader)
        if header.channels == 1:
            palette = palette[:, 0]
        pixels = _image_array((len(wanted), header.width, *palette.shape[1:]), np.uint8)
        for at, strip in iter_index_strips(reader, wanted):
            look_up(palette, strip, pixels[at : at + len(strip)])
    return pixels


def verify(source: Source) -> VQIInfo:
    """Check a file's structure and every chunk's CRC without decompressing any strip.

    Much cheaper than decoding: it finds truncation and damage in transit. A strip
    whose CRC matches but whose content is malformed is found only by decoding.
    """
    with _binary_stream(source) as stream:
        reader = Reader(stream)
        info = _info(reader.header)
        reader.read_palette()
        for _ in _strip_payloads(reader):
            pass
    return info
