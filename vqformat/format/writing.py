"""Writing .vqi files: a palette and its indices, strip by strip, into a file or path.

This layer writes any palette it is given; choosing one is the quantizer's job.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from ..errors import VQIError
from . import methods
from .atomic import atomic_output
from .container import MAX_COLORS, Header, Writer
from .metadata import Metadata

STRIP_PIXELS = 1 << 20
"""Largest strip the encoder writes by default, in pixels: it bounds the memory of
encoding and decoding beyond the output, and the work of decoding a band of rows."""

MIN_STRIP_PIXELS = 1 << 18
"""Smallest default strip: each strip's streams start with an empty window and their
own code tables, so smaller strips cost bytes (1-1.5% on tools/bench.py's 0.27 MP
photos at 2^16)."""

STRIPS_PER_IMAGE = 64
"""Between those sizes a default strip is 1/64 of the image, so a decoder filling its
output strip by strip needs little memory beyond the output itself."""


def default_strip_rows(width: int, height: int) -> int:
    """Rows per strip: 1/STRIPS_PER_IMAGE of the image, within the default strip sizes,
    as many whole strips as that fits, then rows that leave a last strip of at least
    half the others: each strip costs a decoder a fixed overhead, and a 640 x 427 image
    in strips of 409 rows and 18 decoded 15-30% slower than in one strip."""
    target = min(STRIP_PIXELS, max(MIN_STRIP_PIXELS, width * height // STRIPS_PER_IMAGE))
    fewest = -(-height // max(1, STRIP_PIXELS // width))
    strips = max(height // max(1, min(height, target // width)), fewest)
    fewer = range(strips, max(fewest, strips // 2) - 1, -1)  # strips up to twice as tall
    for count in (*fewer, *range(strips + 1, 2 * strips + 1)):
        rows = -(-height // count)
        if 2 * (height - (-(-height // rows) - 1) * rows) >= rows:
            return rows
    return -(-height // strips)


StripIndices = Callable[[int, int], np.ndarray]
"""(first row, row count) -> that strip's palette indices, (rows, W) or flat."""


@dataclass(frozen=True)
class Layout:
    """The validated shape of a file to write, known before its palette is."""

    height: int
    width: int
    codec: methods.StripCodec
    strip_rows: int

    @classmethod
    def of(cls, height: int, width: int, compression: str, strip_rows: int | None) -> Layout:
        codec = methods.codec_by_name(compression)
        rows = default_strip_rows(width, height) if strip_rows is None else strip_rows
        Header(width, height, 1, 1, codec.code, rows)  # the container checks the fields
        return cls(height, width, codec, rows)

    def write(
        self,
        out: BinaryIO,
        palette: np.ndarray,
        strip_indices: StripIndices,
        metadata: Metadata | None = None,
    ) -> None:
        """Write the file strip by strip: only one strip's indices exist at a time."""
        if metadata:
            metadata.check_channels(palette.shape[1])
        header = Header(
            self.width,
            self.height,
            palette.shape[1],
            len(palette),
            self.codec.code,
            self.strip_rows,
        )
        chunks = metadata.chunks() if metadata else ()
        writer = Writer(out, header, palette.tobytes(), chunks)
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
    compression: str = methods.DEFAULT_COMPRESSION,
    strip_rows: int | None = None,
    metadata: Metadata | None = None,
) -> None:
    """Write a palette (k, C) and indices (H, W) as a .vqi file, without any quantization.

    ``metadata`` (colour profile, EXIF, XMP, text) is stored as ancillary chunks."""
    palette = as_palette(palette)
    indices = np.asarray(indices)
    if indices.ndim != 2 or indices.size == 0:
        raise VQIError(f"indices must be a non-empty 2-D array, got shape {indices.shape}")
    if not np.issubdtype(indices.dtype, np.integer):
        raise VQIError(f"indices must be integers, got {indices.dtype}")
    if indices.min() < 0 or indices.max() >= len(palette):
        raise VQIError(f"indices must lie in 0..{len(palette) - 1}")
    layout = Layout.of(*indices.shape, compression, strip_rows)
    layout.write(out, palette, lambda first, rows: indices[first : first + rows], metadata)


def encode_indexed(palette: np.ndarray, indices: np.ndarray, **options) -> bytes:
    """Bytes of a .vqi file holding exactly this palette and these indices."""
    out = io.BytesIO()
    write_indexed(out, palette, indices, **options)
    return out.getvalue()


def as_palette(palette: np.ndarray) -> np.ndarray:
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


def write_to(file: str | os.PathLike | BinaryIO, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write`` on a binary file, or on a path written atomically.

    A path is replaced only when ``write`` has completed and the data reached the disk
    (``atomic.atomic_output``): a failure at any point leaves an existing file as it was.
    """
    if hasattr(file, "write"):
        write(file)
        return
    with atomic_output(file, force=True) as out:
        write(out)
