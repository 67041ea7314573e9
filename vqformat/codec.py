"""The encode/decode pipeline: pixels -> palette + indices -> strips -> file, and back."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from . import compression
from . import palette as palette_fitting
from .bitpack import index_dtype
from .container import MAX_COLORS, Header, Reader, Writer, bits_for_colors
from .errors import VQIError

Source = bytes | bytearray | memoryview | str | os.PathLike | BinaryIO

MAX_PIXELS = 1 << 30
"""Default limit on width x height accepted by the decoder (pass ``max_pixels`` to change)."""

STRIP_PIXELS = 1 << 22
"""Encoders aim for strips of about this many pixels: large enough to compress well,
small enough to bound memory and allow decoding a band of rows alone."""


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


def _check_pixel_limit(header: Header, max_pixels: int | None) -> None:
    if max_pixels is not None and header.pixel_count > max_pixels:
        raise VQIError(
            f"image of {header.width}x{header.height} pixels exceeds the limit of "
            f"{max_pixels} pixels (pass max_pixels to raise it)"
        )


def _strip_payloads(reader: Reader) -> Iterator[bytes]:
    """Each strip's IDAT payload; a length above the method's bound is rejected unread."""
    header = reader.header
    codec = compression.codec_by_code(header.compression)
    width, bits = header.width, header.bits_per_index
    return reader.iter_strips(lambda rows: codec.max_payload(rows, width, bits))


def iter_index_strips(reader: Reader) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (first row, indices) for each strip, each index checked against the palette.

    ``reader`` must have read the palette. Only one strip is held at a time, so
    callers that place strips into their own buffer (the Pillow plugin) bound memory.
    """
    header = reader.header
    codec = compression.codec_by_code(header.compression)
    width, bits = header.width, header.bits_per_index
    for strip, payload in enumerate(_strip_payloads(reader)):
        first, rows = header.strip_span(strip)
        indices = codec.decode(payload, rows, width, bits)
        if header.colors < 1 << bits and indices.size and int(indices.max()) >= header.colors:
            raise VQIError(
                f"index {int(indices.max())} in strip {strip} is outside the "
                f"palette of {header.colors} colours"
            )
        yield first, indices


def _open_reader(stream: BinaryIO, max_pixels: int | None, check_crc: bool) -> Reader:
    reader = Reader(stream, check_crc=check_crc)
    _check_pixel_limit(reader.header, max_pixels)
    compression.codec_by_code(reader.header.compression)
    return reader


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
    source: Source, *, max_pixels: int | None = MAX_PIXELS, check_crc: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Decode to (palette, indices): a (k, C) uint8 palette and (H, W) indices.

    Indices are uint8 for k <= 256, uint16 otherwise. ``check_crc=False`` exists for
    fuzzing only.
    """
    with _binary_stream(source) as stream:
        reader = _open_reader(stream, max_pixels, check_crc)
        header = reader.header
        palette = _palette_array(reader)
        indices = _image_array((header.height, header.width), index_dtype(header.bits_per_index))
        for first, strip in iter_index_strips(reader):
            indices[first : first + len(strip)] = strip
    return palette, indices


def decode(
    source: Source, *, max_pixels: int | None = MAX_PIXELS, check_crc: bool = True
) -> np.ndarray:
    """Decode to a uint8 array: (H, W) for grey files, (H, W, C) for LA, RGB and RGBA."""
    with _binary_stream(source) as stream:
        reader = _open_reader(stream, max_pixels, check_crc)
        header = reader.header
        palette = _palette_array(reader)
        if header.channels == 1:
            palette = palette[:, 0]
        pixels = _image_array((header.height, header.width, *palette.shape[1:]), np.uint8)
        for first, strip in iter_index_strips(reader):
            pixels[first : first + len(strip)] = palette[strip]
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
    return max(1, min(height, STRIP_PIXELS // width))


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
    codec = compression.codec_by_name(compression_method)
    height, width = indices.shape
    header = Header(
        width,
        height,
        palette.shape[1],
        len(palette),
        codec.code,
        default_strip_rows(width, height) if strip_rows is None else strip_rows,
    )
    writer = Writer(out, header, palette.tobytes())
    bits = header.bits_per_index
    for strip in range(header.strip_count):
        first, rows = header.strip_span(strip)
        writer.write_strip(codec.encode(indices[first : first + rows], bits))
    writer.close()


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


def _as_pixels(pixels: np.ndarray) -> np.ndarray:
    """Validate encoder input and return it as (H, W, C) uint8."""
    array = np.asarray(pixels)
    if array.dtype == np.bool_:
        raise VQIError("boolean arrays are ambiguous: convert to uint8 (0/255) first")
    if array.dtype != np.uint8:
        raise VQIError(f"pixels must be uint8, got {array.dtype}: scale and convert first")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or not 1 <= array.shape[2] <= 4:
        raise VQIError(
            f"pixels must have shape (H, W) or (H, W, C) with C in 1..4, got {array.shape}"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise VQIError(f"image is empty: shape {array.shape}")
    return array


def _check_colors(colors: int) -> int:
    if isinstance(colors, bool) or not isinstance(colors, (int, np.integer)):
        raise VQIError(f"colors must be an integer, got {colors!r}")
    if not 1 <= colors <= MAX_COLORS:
        raise VQIError(f"colors must be in 1..{MAX_COLORS}, got {colors}")
    return int(colors)


def quantize(
    pixels: np.ndarray,
    colors: int = 256,
    *,
    method: str = palette_fitting.DEFAULT_METHOD,
    seed: int = 0,
    min_psnr: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Fit a palette to the pixels and assign each pixel: returns (palette, (H, W) indices).

    With ``min_psnr`` (dB) the palette is the smallest reaching it, ``colors`` at most.
    """
    array = _as_pixels(pixels)
    colors = _check_colors(colors)
    height, width, channels = array.shape
    flat = np.ascontiguousarray(array).reshape(-1, channels)
    palette, indices = palette_fitting.quantize(
        flat, colors, method=method, seed=seed, min_psnr=min_psnr
    )
    return palette, indices.reshape(height, width)


def encode(
    pixels: np.ndarray,
    colors: int = 256,
    *,
    method: str = palette_fitting.DEFAULT_METHOD,
    compression: str = compression.DEFAULT_METHOD,
    strip_rows: int | None = None,
    seed: int = 0,
    min_psnr: float | None = None,
) -> bytes:
    """Quantize a uint8 image to at most ``colors`` colours and return the .vqi bytes.

    ``method`` chooses how the palette is fitted, ``compression`` how the index
    stream is stored; the encoder is deterministic for a given ``seed``. ``min_psnr``
    asks for the smallest palette reaching that PSNR (dB), with ``colors`` the most.
    """
    palette, indices = quantize(pixels, colors, method=method, seed=seed, min_psnr=min_psnr)
    return encode_indexed(palette, indices, compression_method=compression, strip_rows=strip_rows)


def save(file: str | os.PathLike | BinaryIO, pixels: np.ndarray, **options) -> None:
    """Encode ``pixels`` into a path or binary file (numpy.save's argument order)."""
    data = encode(pixels, **options)
    if hasattr(file, "write"):
        file.write(data)
    else:
        with open(file, "wb") as out:
            out.write(data)


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
