"""The encode/decode pipeline: pixels -> palette + indices -> strips -> file, and back."""

from __future__ import annotations

import inspect
import io
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from . import compression
from . import palette as palette_fitting
from .bitpack import index_dtype
from .container import MAX_COLORS, Header, Reader, Writer, bits_for_colors
from .dither import check_ditherable, diffuse
from .errors import VQIError, check_integer
from .streaming import ColorSet, ImageRows, StripAssigner, distinct_colors, sample_pixels

Source = bytes | bytearray | memoryview | str | os.PathLike | BinaryIO

MAX_PIXELS = 1 << 30
"""Default limit on width x height accepted by the decoder (pass ``max_pixels`` to change)."""

STRIP_PIXELS = 1 << 20
"""Largest strip the encoder writes by default, in pixels: it bounds the memory of
encoding and decoding beyond the output, and the work of decoding a band of rows."""

MIN_STRIP_PIXELS = 1 << 18
"""Smallest default strip: each strip's streams start with an empty window and their
own code tables, so smaller strips cost bytes (1-1.5% on 0.27 MP photos at 2^16)."""

STRIPS_PER_IMAGE = 64
"""Between those sizes a default strip is 1/64 of the image, so a decoder filling its
output strip by strip needs little memory beyond the output itself."""

FIT_PIXELS = 1 << 20
"""The palette is fitted on at most this many pixels: all of an image that has no more,
else a uniform sample of this size. Fitting costs memory and time with the distinct
colours it sees, so this bounds the encoder's memory whatever the image size (about
130 MB at worst, a megapixel of pure noise); pixels are then mapped to the palette a
strip at a time. Photos up to a megapixel are fitted on every pixel: sampling a
0.27 MP photo cost about 0.05 dB at 256 colours."""


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


# --- reading ---------------------------------------------------------------


@contextmanager
def _binary_stream(source: Source) -> Iterator[BinaryIO]:
    if isinstance(source, memoryview) and not source.c_contiguous:
        source = source.tobytes()
    if isinstance(source, (bytes, bytearray, memoryview)):
        yield io.BytesIO(source)
    elif isinstance(source, (str, os.PathLike)):
        try:
            with open(source, "rb") as stream:
                yield stream
        except OSError as error:
            raise VQIError(f"cannot read {os.fspath(source)!r}: {error.strerror}") from None
    elif hasattr(source, "read"):
        yield source
    else:
        raise VQIError(f"cannot read a VQI file from {type(source).__name__}")


def _info(header: Header) -> VQIInfo:
    return VQIInfo(
        header.width,
        header.height,
        header.mode,
        header.channels,
        header.colors,
        header.bits_per_index,
        compression.codec_by_code(header.compression).name,
        header.strip_rows,
        header.version,
    )


def read_info(source: Source, *, check_crc: bool = True) -> VQIInfo:
    """Read the header only; no pixel data is read or decoded.

    ``check_crc=False`` exists for fuzzing only, as for ``decode``.
    """
    with _binary_stream(source) as stream:
        return _info(Reader(stream, check_crc=check_crc).header)


def _decode_strip(codec: compression.StripCodec, header: Header, strip: int, payload: bytes):
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
    codec = compression.codec_by_code(header.compression)
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
    codec = compression.codec_by_code(header.compression)
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


def _first_at_or_after(wanted: range, row: int) -> int:
    """Position in ``wanted`` (a range of step >= 1) of its first row >= ``row``."""
    return min(len(wanted), max(0, -(-(row - wanted.start) // wanted.step)))


def _wanted_rows(header: Header, rows: slice | None) -> range:
    if rows is None:
        return range(header.height)
    if not isinstance(rows, slice):
        raise VQIError(f"rows must be a slice, got {type(rows).__name__}")
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
    compression.codec_by_code(header.compression)
    return reader, wanted


def _image_array(shape: tuple[int, ...], dtype: type[np.generic]) -> np.ndarray:
    """The output buffer; its size passed the pixel limit, if any, but may still not fit."""
    try:
        return np.empty(shape, dtype=dtype)
    except (MemoryError, ValueError):
        raise VQIError(f"cannot allocate an image of shape {shape}: out of memory") from None


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


# --- writing ---------------------------------------------------------------


def default_strip_rows(width: int, height: int) -> int:
    """Rows per strip: 1/STRIPS_PER_IMAGE of the image, within the default strip sizes."""
    target = min(STRIP_PIXELS, max(MIN_STRIP_PIXELS, width * height // STRIPS_PER_IMAGE))
    return max(1, min(height, target // width))


StripIndices = Callable[[int, int], np.ndarray]
"""(first row, row count) -> that strip's palette indices, (rows, W) or flat."""


@dataclass(frozen=True)
class _Layout:
    """The validated shape of a file to write, known before its palette is."""

    height: int
    width: int
    codec: compression.StripCodec
    strip_rows: int

    @classmethod
    def of(cls, height: int, width: int, compression_method: str, strip_rows: int | None):
        codec = compression.codec_by_name(compression_method)
        rows = default_strip_rows(width, height) if strip_rows is None else strip_rows
        Header(width, height, 1, 1, codec.code, rows)  # the container checks the fields
        return cls(height, width, codec, rows)

    def write(self, out: BinaryIO, palette: np.ndarray, strip_indices: StripIndices) -> None:
        """Write the file strip by strip: only one strip's indices exist at a time."""
        header = Header(
            self.width,
            self.height,
            palette.shape[1],
            len(palette),
            self.codec.code,
            self.strip_rows,
        )
        writer = Writer(out, header, palette.tobytes())
        for strip in range(header.strip_count):
            first, rows = header.strip_span(strip)
            indices = strip_indices(first, rows).reshape(rows, self.width)
            writer.write_strip(self.codec.encode(indices, header.bits_per_index))
        writer.close()


def write_indexed(
    out: BinaryIO,
    palette: np.ndarray,
    indices: np.ndarray,
    *,
    compression_method: str = compression.DEFAULT_METHOD,
    strip_rows: int | None = None,
) -> None:
    """Write a palette (k, C) and indices (H, W) as a .vqi file, without any quantization."""
    palette = _as_palette(palette)
    indices = np.asarray(indices)
    if indices.ndim != 2 or indices.size == 0:
        raise VQIError(f"indices must be a non-empty 2-D array, got shape {indices.shape}")
    if not np.issubdtype(indices.dtype, np.integer):
        raise VQIError(f"indices must be integers, got {indices.dtype}")
    if indices.min() < 0 or indices.max() >= len(palette):
        raise VQIError(f"indices must lie in 0..{len(palette) - 1}")
    layout = _Layout.of(*indices.shape, compression_method, strip_rows)
    layout.write(out, palette, lambda first, rows: indices[first : first + rows])


def encode_indexed(palette: np.ndarray, indices: np.ndarray, **options) -> bytes:
    """Bytes of a .vqi file holding exactly this palette and these indices."""
    out = io.BytesIO()
    write_indexed(out, palette, indices, **options)
    return out.getvalue()


def _as_palette(palette: np.ndarray) -> np.ndarray:
    palette = np.asarray(palette)
    if palette.ndim == 1:
        palette = palette[:, None]
    if palette.dtype != np.uint8 or palette.ndim != 2 or not 1 <= palette.shape[1] <= 4:
        raise VQIError(
            f"palette must be uint8 of shape (k, 1..4), got {palette.dtype} {palette.shape}"
        )
    if not 1 <= len(palette) <= MAX_COLORS:
        raise VQIError(f"palette must have 1..{MAX_COLORS} entries, got {len(palette)}")
    return np.ascontiguousarray(palette)


def _check_min_psnr(min_psnr: float | None) -> float | None:
    if min_psnr is None:
        return None
    if isinstance(min_psnr, bool) or not isinstance(min_psnr, (int, float, np.number)):
        raise VQIError(f"min_psnr must be a number of dB, got {min_psnr!r}")
    if not 0 < min_psnr < float("inf"):
        raise VQIError(f"min_psnr must be a positive finite number of dB, got {min_psnr}")
    return float(min_psnr)


def quantize(
    pixels: np.ndarray,
    colors: int = 256,
    *,
    method: str = palette_fitting.DEFAULT_METHOD,
    seed: int = 0,
    min_psnr: float | None = None,
    dither: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Fit a palette to the pixels and assign each pixel: returns (palette, (H, W) indices).

    With ``min_psnr`` (dB) the palette is the smallest reaching it, ``colors`` at most.
    With ``dither`` the pixels are mapped by Floyd-Steinberg error diffusion (grey or
    RGB, at most 256 colours) instead of each to its nearest entry.
    """
    image = ImageRows.of(pixels)
    colors = check_integer("colors", colors, 1, MAX_COLORS)
    seed = check_integer("seed", seed, 0, 2**32 - 1)
    min_psnr = _check_min_psnr(min_psnr)
    flat = np.ascontiguousarray(image.band(0, image.height))
    options = {"method": method, "seed": seed, "min_psnr": min_psnr}
    if dither:
        check_ditherable(image.channels, colors)
        palette = palette_fitting.fit(flat, colors, **options)
        return palette, diffuse(flat.reshape(image.height, image.width, -1), palette)
    palette, indices = palette_fitting.quantize(flat, colors, **options)
    return palette, indices.reshape(image.height, image.width)


def _fit(
    image: ImageRows,
    colors: int,
    method: str,
    seed: int,
    min_psnr: float | None,
    assign: bool,
) -> tuple[np.ndarray, np.ndarray | None]:
    """(palette, every pixel's index or None): an image of at most ``FIT_PIXELS`` is
    fitted on every pixel and, with ``assign``, the fit's own assignment is kept; a
    larger one is fitted on a uniform sample of that many (``min_psnr`` is then judged
    on the sample) and mapped strip by strip later.

    When a sample shows few colours the image is scanned (band by band, stopping
    early) so that an image of at most ``colors`` colours keeps them all exactly.
    """
    sample = sample_pixels(image, FIT_PIXELS, seed)
    options = {"method": method, "seed": seed, "min_psnr": min_psnr}
    sampled = len(sample) < image.pixel_count
    if assign and not sampled:
        return palette_fitting.quantize(sample, colors, **options)
    if sampled and min_psnr is None and ColorSet(image.channels, colors).add(sample):
        exact = distinct_colors(image, colors)
        if exact is not None:
            return exact, None
    return palette_fitting.fit(sample, colors, **options), None


@dataclass(frozen=True)
class _Plan:
    """Everything needed to write an image, decided before a byte is written."""

    layout: _Layout
    palette: np.ndarray
    strip_indices: StripIndices

    def write(self, out: BinaryIO) -> None:
        self.layout.write(out, self.palette, self.strip_indices)


def _plan_image(
    pixels: Any,
    colors: int,
    method: str,
    compression: str,
    strip_rows: int | None,
    seed: int,
    palette: np.ndarray | None,
    min_psnr: float | None,
    dither: bool,
) -> _Plan:
    """Validate the options, then choose the palette and how each strip gets its indices."""
    image = ImageRows.of(pixels)
    colors = check_integer("colors", colors, 1, MAX_COLORS)
    seed = check_integer("seed", seed, 0, 2**32 - 1)
    min_psnr = _check_min_psnr(min_psnr)
    layout = _Layout.of(image.height, image.width, compression, strip_rows)
    if dither:
        check_ditherable(image.channels, colors if palette is None else len(palette))
    indices = None
    if palette is None:
        palette, indices = _fit(image, colors, method, seed, min_psnr, assign=not dither)
    palette = _as_palette(palette)
    if palette.shape[1] != image.channels:
        raise VQIError(
            f"palette has {palette.shape[1]} channels but the image has {image.channels}"
        )
    if dither:
        return _Plan(layout, palette, _dithered_strips(image, palette))
    return _Plan(layout, palette, _strip_indices(image, palette, indices))


def _strip_indices(
    image: ImageRows, palette: np.ndarray, indices: np.ndarray | None
) -> StripIndices:
    """Where each strip's indices come from: the fit's own assignment when it covered
    every pixel, else each strip mapped to the palette as it is read."""
    if indices is not None:
        width = image.width
        return lambda first, rows: indices[first * width : (first + rows) * width]
    assign = StripAssigner(palette)
    return lambda first, rows: assign(image.band(first, rows))


def _dithered_strips(image: ImageRows, palette: np.ndarray) -> StripIndices:
    """Error diffusion over the whole image when it is at most ``FIT_PIXELS`` (no
    seams), else strip by strip (the error restarts at each strip's first row)."""

    def diffuse_rows(first: int, rows: int) -> np.ndarray:
        return diffuse(image.band(first, rows).reshape(rows, image.width, -1), palette).ravel()

    if image.pixel_count > FIT_PIXELS:
        return diffuse_rows
    indices = diffuse_rows(0, image.height)
    return _strip_indices(image, palette, indices)


def encode(
    pixels: np.ndarray,
    colors: int = 256,
    *,
    method: str = palette_fitting.DEFAULT_METHOD,
    compression: str = compression.DEFAULT_METHOD,
    strip_rows: int | None = None,
    seed: int = 0,
    palette: np.ndarray | None = None,
    min_psnr: float | None = None,
    dither: bool = False,
) -> bytes:
    """Quantize a uint8 image to at most ``colors`` colours and return the .vqi bytes.

    ``pixels`` may be any array-like with ``shape``, ``dtype`` and row slicing, such as
    a ``numpy.memmap``, read a band of rows at a time: images over ``FIT_PIXELS`` are
    fitted on a uniform sample of that many pixels. ``method`` chooses how the palette
    is fitted, ``compression`` how the index stream is stored; the encoder is
    deterministic for a given ``seed``. ``min_psnr`` asks for the smallest palette
    reaching that PSNR (dB), with ``colors`` the most. ``palette`` (k, C) skips fitting
    and maps every pixel to its nearest entry (``colors``, ``method`` and ``min_psnr``
    are then unused). ``dither`` maps the pixels by Floyd-Steinberg error diffusion
    (grey or RGB, at most 256 colours) instead of each to its nearest entry; a
    ``min_psnr`` target is judged before dithering.
    """
    out = io.BytesIO()
    plan = _plan_image(
        pixels, colors, method, compression, strip_rows, seed, palette, min_psnr, dither
    )
    plan.write(out)
    return out.getvalue()


def save(file: str | os.PathLike | BinaryIO, pixels: Any, **options) -> None:
    """Encode ``pixels`` into a path or binary file (numpy.save's argument order).

    Takes ``encode``'s options. The file is written strip by strip as the image is
    mapped, so its bytes are never all in memory; the palette is fitted and every
    option checked before anything is written, and a path that cannot be completed
    is removed.
    """
    arguments = inspect.signature(encode).bind(pixels, **options)
    arguments.apply_defaults()
    write_to(file, _plan_image(**arguments.arguments).write)


def write_to(file: str | os.PathLike | BinaryIO, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write`` on a binary file, or on a path opened for it.

    A path whose writing fails is removed rather than left half written.
    """
    if hasattr(file, "write"):
        write(file)
        return
    try:
        with open(file, "wb") as out:
            try:
                write(out)
            except BaseException:
                out.close()
                os.remove(file)
                raise
    except OSError as error:
        raise VQIError(f"cannot write {os.fspath(file)!r}: {error.strerror}") from None


__all__ = [
    "MAX_PIXELS",
    "VQIInfo",
    "bits_for_colors",
    "decode",
    "decode_indexed",
    "encode",
    "encode_indexed",
    "iter_index_strips",
    "quantize",
    "read_info",
    "save",
    "verify",
    "write_indexed",
]
