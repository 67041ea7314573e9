"""Lossy image codecs for Zarr: numcodecs ``VQI`` (id ``"vqi"``) and Zarr v3 ``VQICodec``.

A chunk is one uint8 image or a stack of them, shape (..., H, W) or (..., H, W, C) with
C in 1..4 (the last axis is channels when the chunk has 3 or more axes and that axis
has 1 to 4 entries). Each image is quantized to a palette, so the codec is LOSSY:
decoded pixels are palette colours, not the originals (``store_psnr`` measures the
loss). Chunk bytes: ``b"VQIZ"``, version (1 byte, 1), flags (1 byte, bit 0: the last
axis is channels), ndim (1 byte), the shape (ndim little-endian uint32), the byte
length of each image's stream (uint32 each, images in C order of the leading axes),
then those streams, each a complete .vqi file that any VQI reader decodes.

This module imports zarr and numcodecs; nothing else in vqformat imports it, and the
entry points load it only when an array or config names ``vqi``.
"""

from __future__ import annotations

import asyncio
import math
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numcodecs.abc
import numpy as np
import zarr
from numcodecs.compat import ensure_bytes, ensure_ndarray_like, ndarray_copy
from PIL import Image, ImageOps
from zarr.abc.codec import ArrayBytesCodec
from zarr.core.common import parse_named_configuration

import vqformat
from vqformat import EncodeOptions, VQIError
from vqformat.dataset import fit_palette
from vqformat.pipeline import encode_with

if TYPE_CHECKING:
    from typing import Self

    from zarr.core.array_spec import ArraySpec
    from zarr.core.buffer import Buffer, NDBuffer

MAGIC = b"VQIZ"
VERSION = 1
_HEAD = struct.Struct("<4sBBB")
_OPTIONS = ("colors", "compression", "method", "seed", "min_psnr", "dither")
"""The ``EncodeOptions`` an array's codec config may name, besides ``palette``."""

PaletteRows = tuple[tuple[int, ...], ...]


def _palette_rows(palette: Any) -> PaletteRows | None:
    """A palette as JSON-able rows of ints 0..255, refused if it is anything else."""
    if palette is None:
        return None
    array = np.asarray(palette)
    if array.ndim != 2 or array.dtype.kind not in "iu" or array.size == 0:
        raise VQIError("palette must be a (k, C) list of lists of integers 0..255")
    if array.min() < 0 or array.max() > 255:
        raise VQIError("palette entries must be integers 0..255")
    return tuple(tuple(row) for row in array.tolist())


@dataclass(frozen=True)
class Settings:
    """An array's encoder options, checked by ``EncodeOptions`` when the codec is made
    (not at the first write), and the JSON config that names them."""

    options: EncodeOptions
    palette: PaletteRows | None = None

    @classmethod
    def of(cls, palette: Any = None, **named: Any) -> Settings:
        unknown = sorted(set(named) - set(_OPTIONS))
        if unknown:
            raise VQIError(f"unknown vqi codec option(s): {', '.join(unknown)}")
        rows = _palette_rows(palette)
        fixed = None if rows is None else np.array(rows, np.uint8)
        return cls(EncodeOptions(**named, palette=fixed), rows)

    def config(self) -> dict[str, Any]:
        config = {name: getattr(self.options, name) for name in _OPTIONS}
        config["palette"] = None if self.palette is None else [list(row) for row in self.palette]
        return config


def _image_axes(shape: Sequence[int]) -> int:
    """How many trailing axes are one image: 3 with a channel axis, else 2."""
    if len(shape) < 2:
        raise VQIError(f"a vqi chunk is (..., H, W) or (..., H, W, C), got shape {tuple(shape)}")
    return 3 if len(shape) >= 3 and 1 <= shape[-1] <= 4 else 2


def encode_chunk(chunk: Any, settings: Settings) -> bytes:
    """The chunk's bytes: the framing header, then one .vqi stream per image."""
    chunk = np.asarray(chunk)
    if chunk.dtype != np.uint8:
        raise VQIError(f"vqi chunks must be uint8, got {chunk.dtype}")
    axes = _image_axes(chunk.shape)
    images = chunk.reshape(-1, *chunk.shape[-axes:])
    streams = [encode_with(image, settings.options) for image in images]
    lengths = [len(stream) for stream in streams]
    head = _HEAD.pack(MAGIC, VERSION, int(axes == 3), chunk.ndim)
    table = struct.pack(f"<{chunk.ndim + len(lengths)}I", *chunk.shape, *lengths)
    return b"".join([head, table, *streams])


def _parse_frame(data: bytes) -> tuple[tuple[int, ...], int, list[memoryview]]:
    """(shape, image axes, streams) of a chunk, every length checked against the bytes."""
    try:
        magic, version, flags, ndim = _HEAD.unpack_from(data)
        shape = struct.unpack_from(f"<{ndim}I", data, _HEAD.size)
    except struct.error:
        raise VQIError("not a vqi chunk: truncated header") from None
    if magic != MAGIC or version != VERSION or flags > 1 or ndim < 2 + flags:
        raise VQIError("not a vqi chunk (bad signature, version, flags or rank)")
    axes = 2 + flags
    if _image_axes(shape) != axes:
        raise VQIError(f"vqi chunk of shape {shape} has inconsistent flags")
    count = math.prod(shape[:-axes])
    offset = _HEAD.size + 4 * ndim
    if offset + 4 * count > len(data):
        raise VQIError("vqi chunk truncated in its length table")
    lengths = struct.unpack_from(f"<{count}I", data, offset)
    offset += 4 * count
    if offset + sum(lengths) != len(data):
        raise VQIError("vqi chunk is truncated or has trailing bytes")
    view, streams = memoryview(data), []
    for length in lengths:
        streams.append(view[offset : offset + length])
        offset += length
    return shape, axes, streams


def decode_chunk(data: Any) -> np.ndarray:
    """The chunk's array, in its stored shape; every image header is checked first."""
    shape, axes, streams = _parse_frame(ensure_bytes(data))
    image_shape = shape[-axes:]
    channels = image_shape[2] if axes == 3 else 1
    for stream in streams:
        info = vqformat.read_info(stream)
        if (info.height, info.width, info.channels) != (*image_shape[:2], channels):
            raise VQIError(
                f"vqi chunk image is {info.height}x{info.width}x{info.channels}, "
                f"the chunk says {image_shape}"
            )
    out = np.empty(shape, np.uint8)
    images = out.reshape(-1, *image_shape)
    for number, stream in enumerate(streams):
        images[number] = vqformat.decode(stream).reshape(image_shape)
    return out


class VQI(numcodecs.abc.Codec):
    """numcodecs codec (id ``"vqi"``): LOSSY palette quantization of image chunks.

    Keywords are ``vqformat.encode``'s ``colors``, ``compression``, ``method``,
    ``seed``, ``min_psnr``, ``dither``, and ``palette``, a (k, C) dataset palette
    kept in the config so every chunk shares it.
    """

    codec_id = "vqi"

    def __init__(self, **options: Any) -> None:
        self.settings = Settings.of(**options)

    def encode(self, buf: Any) -> bytes:
        return encode_chunk(ensure_ndarray_like(buf), self.settings)

    def decode(self, buf: Any, out: Any = None) -> np.ndarray:
        decoded = decode_chunk(buf)
        return decoded if out is None else ndarray_copy(decoded, out)

    def get_config(self) -> dict[str, Any]:
        return {"id": self.codec_id, **self.settings.config()}

    def __repr__(self) -> str:
        config = self.settings.config()
        if config["palette"] is not None:
            config["palette"] = f"<{len(config['palette'])} colours>"
        return f"VQI({', '.join(f'{key}={value!r}' for key, value in config.items())})"


@dataclass(frozen=True)
class VQICodec(ArrayBytesCodec):
    """Zarr v3 array-to-bytes codec ``"vqi"``: LOSSY, as ``VQI``, with the same options."""

    settings: Settings
    is_fixed_size = False

    def __init__(self, **options: Any) -> None:
        object.__setattr__(self, "settings", Settings.of(**options))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        _, configuration = parse_named_configuration(data, "vqi", require_configuration=False)
        return cls(**(configuration or {}))

    def to_dict(self) -> dict[str, Any]:
        return {"name": "vqi", "configuration": self.settings.config()}

    def validate(self, *, shape: tuple[int, ...], dtype: Any, chunk_grid: Any) -> None:
        if dtype.to_native_dtype() != np.uint8:
            raise VQIError(f"the vqi codec stores uint8 arrays, not {dtype.to_native_dtype()}")
        chunk_shape = getattr(chunk_grid, "chunk_shape", shape)
        channels = chunk_shape[-1] if _image_axes(chunk_shape) == 3 else 1
        palette = self.settings.palette
        if palette is not None and len(palette[0]) != channels:
            raise VQIError(f"palette has {len(palette[0])} channels, the chunks have {channels}")

    async def _encode_single(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> Buffer:
        pixels = chunk_array.as_numpy_array()
        data = await asyncio.to_thread(encode_chunk, pixels, self.settings)
        return chunk_spec.prototype.buffer.from_bytes(data)

    async def _decode_single(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        pixels = await asyncio.to_thread(decode_chunk, chunk_bytes.to_bytes())
        if pixels.shape != tuple(chunk_spec.shape):
            raise VQIError(f"vqi chunk has shape {pixels.shape}, the array {chunk_spec.shape}")
        return chunk_spec.prototype.nd_buffer.from_ndarray_like(pixels)

    def compute_encoded_size(self, input_byte_length: int, chunk_spec: ArraySpec) -> int:
        raise NotImplementedError("vqi chunks have no fixed size")


def store_psnr(array: Any, source: Any) -> float:
    """PSNR (dB) of a stored array against its source pixels, read along axis 0 by chunk."""
    if tuple(array.shape) != tuple(np.shape(source)):
        raise VQIError(f"store has shape {array.shape}, the source {np.shape(source)}")
    step = int(getattr(array, "chunks", (1,))[0]) or 1
    squared = 0.0
    for first in range(0, array.shape[0], step):
        stored = np.asarray(array[first : first + step], np.float64)
        squared += float(np.sum((stored - np.asarray(source[first : first + step])) ** 2))
    mse = squared / max(math.prod(array.shape), 1)
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def _read_image(path: Any) -> np.ndarray:
    """An image file's pixels as L, LA, RGB or RGBA, its EXIF orientation applied."""
    with Image.open(path) as image:
        image = ImageOps.exif_transpose(image)
        if image.mode not in ("L", "LA", "RGB", "RGBA"):
            image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        return np.asarray(image)


def images_to_zarr(
    paths: Iterable[Any],
    store: Any,
    *,
    images_per_chunk: int = 1,
    palette: Any = None,
    overwrite: bool = False,
    **options: Any,
) -> zarr.Array:
    """Write same-sized image files as one (N, H, W[, C]) Zarr v3 array (LOSSY vqi chunks).

    ``palette``: None for a palette per chunk, ``"shared"`` to fit one on all the
    images (``fit_palette``, at ``colors``) so an index means one colour everywhere,
    or a (k, C) palette. Other keywords are the codec's. Reads one chunk at a time.
    """
    paths = list(paths)
    if not paths:
        raise VQIError("images_to_zarr needs at least one image")
    first = _read_image(paths[0])
    if isinstance(palette, str) and palette == "shared":
        colors = options.get("colors", EncodeOptions().colors)
        palette = fit_palette(
            (_read_image(path) for path in paths), colors, seed=options.get("seed", 0)
        )
    codec = VQICodec(palette=palette, **options)
    array = zarr.create_array(
        store,
        shape=(len(paths), *first.shape),
        chunks=(images_per_chunk, *first.shape),
        dtype="uint8",
        serializer=codec,
        compressors=None,
        overwrite=overwrite,
    )
    for start in range(0, len(paths), images_per_chunk):
        batch = paths[start : start + images_per_chunk]
        images = [_read_image(path) for path in batch]
        for path, image in zip(batch, images, strict=True):
            if image.shape != first.shape:
                raise VQIError(f"{path}: shape {image.shape}, the first image {first.shape}")
        array[start : start + len(batch)] = np.stack(images)
    return array
