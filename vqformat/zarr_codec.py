"""A vqi codec for Zarr: image chunks stored as .vqi streams (lossy).

Two codecs share one chunk format: ``VQI``, a numcodecs codec (id ``"vqi"``: Zarr v2
compressors, ``numcodecs.get_codec``), and ``VQICodec``, a Zarr v3 array-to-bytes
codec (name ``"vqi"``, used as ``serializer=``). Both are registered through entry
points, so opening an existing array needs no ``import vqformat``. The codec is
**lossy**: each image is quantized to a palette; ``store_psnr`` reports what a store
reached against its source.

A chunk is one image or a stack of images, uint8, of shape (..., H, W) or
(..., H, W, C) with C in 1..4 (``channels`` in the config says which; by default a
last axis of 1..4 on a chunk of 3 or more axes is the channel axis). Its bytes are::

    b"VQIZ"  version (u8, 1)  flags (u8, bit 0: the last axis is channels)
    ndim (u8)  shape (ndim x u32 little-endian)
    then for each image, in C order of the leading axes:
        length (u32 little-endian)  a complete .vqi file of that many bytes

so any .vqi reader can decode each image. With ``palette`` (a dataset palette, e.g.
from ``vqformat.dataset.fit_palette``, kept in the array's metadata as a JSON list of
lists) every image of every chunk is mapped to that one palette, so an index means
the same colour everywhere.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numcodecs
import numpy as np
from numcodecs.abc import Codec
from numcodecs.compat import ndarray_copy
from zarr.abc.codec import ArrayBytesCodec
from zarr.core.buffer import Buffer, NDBuffer
from zarr.core.common import parse_named_configuration
from zarr.registry import register_codec

from .errors import VQIError, check_integer
from .format import MAX_PIXELS
from .format.reading import decode
from .options import EncodeOptions
from .pipeline import encode_with

CODEC_ID = "vqi"
MAGIC = b"VQIZ"
VERSION = 1
_CHANNEL_AXIS = 1
_LENGTH = struct.Struct("<I")
_PREFIX = struct.Struct("<4sBBB")
CONFIG_OPTIONS = ("colors", "compression", "method", "seed", "min_psnr", "dither")
"""The ``EncodeOptions`` a codec config may set, besides ``palette`` and ``channels``."""


@dataclass(frozen=True)
class ChunkLayout:
    """A chunk's shape split into its stack of images and each image's shape."""

    shape: tuple[int, ...]
    channel_axis: bool

    @classmethod
    def of(cls, shape: Sequence[int], channels: int | None) -> ChunkLayout:
        shape = tuple(int(n) for n in shape)
        if channels is None:
            channel_axis = len(shape) >= 3 and 1 <= shape[-1] <= 4
        else:
            channel_axis = channels > 0
            if channel_axis and (len(shape) < 3 or shape[-1] != channels):
                raise VQIError(f"chunk of shape {shape} has no last axis of {channels} channels")
        layout = cls(shape, channel_axis)
        if len(shape) < 2 + channel_axis or 0 in shape:
            raise VQIError(f"a vqi chunk is (..., H, W) or (..., H, W, C), not {shape}")
        if channel_axis and not 1 <= shape[-1] <= 4:
            raise VQIError(f"a vqi image has 1 to 4 channels, not {shape[-1]}")
        return layout

    @property
    def image_shape(self) -> tuple[int, ...]:
        image = self.shape[-3:] if self.channel_axis else self.shape[-2:]
        return image[:2] if image[2:] == (1,) else image

    @property
    def image_count(self) -> int:
        return math.prod(self.shape[: -2 - self.channel_axis])

    def header(self) -> bytes:
        prefix = _PREFIX.pack(MAGIC, VERSION, _CHANNEL_AXIS * self.channel_axis, len(self.shape))
        return prefix + struct.pack(f"<{len(self.shape)}I", *self.shape)


def encode_chunk(chunk: Any, options: EncodeOptions, channels: int | None = None) -> bytes:
    """The bytes of a chunk of images, each quantized with ``options`` (lossy)."""
    chunk = np.asarray(chunk)
    if chunk.dtype != np.uint8:
        raise VQIError(f"vqi chunks are uint8 images, not {chunk.dtype}")
    layout = ChunkLayout.of(chunk.shape, channels)
    if any(n >= 2**32 for n in layout.shape):
        raise VQIError(f"chunk shape {layout.shape} does not fit a vqi chunk header")
    images = chunk.reshape(layout.image_count, *layout.image_shape)
    parts = [layout.header()]
    for image in images:
        stream = encode_with(image, options)
        parts += [_LENGTH.pack(len(stream)), stream]
    return b"".join(parts)


def read_layout(data: bytes) -> tuple[ChunkLayout, list[memoryview]]:
    """A chunk's layout and its images' .vqi streams, checked to fill it exactly."""
    view = memoryview(data).cast("B")
    if len(view) < _PREFIX.size or bytes(view[:4]) != MAGIC:
        raise VQIError("not a vqi chunk: missing VQIZ signature")
    _, version, flags, ndim = _PREFIX.unpack_from(view)
    if version != VERSION or flags & ~_CHANNEL_AXIS:
        raise VQIError(f"unsupported vqi chunk version {version} (flags {flags:#x})")
    at = _PREFIX.size + 4 * ndim
    if len(view) < at:
        raise VQIError("truncated vqi chunk header")
    shape = struct.unpack_from(f"<{ndim}I", view, _PREFIX.size)
    layout = ChunkLayout.of(shape, shape[-1] if flags & _CHANNEL_AXIS and ndim else 0)
    if layout.image_count > (len(view) - at) // _LENGTH.size:
        raise VQIError(f"vqi chunk of shape {shape} is truncated")
    streams = []
    for _ in range(layout.image_count):
        if len(view) - at < _LENGTH.size:
            raise VQIError("vqi chunk is truncated")
        (length,) = _LENGTH.unpack_from(view, at)
        at += _LENGTH.size
        if length > len(view) - at:
            raise VQIError("vqi chunk is truncated: an image stream runs past its end")
        streams.append(view[at : at + length])
        at += length
    if at != len(view):
        raise VQIError(f"vqi chunk has {len(view) - at} stray bytes after its images")
    return layout, streams


def decode_chunk(data: bytes, expected_shape: Sequence[int] | None = None) -> np.ndarray:
    """The uint8 array of a chunk's bytes, of the shape its header gives (and
    ``expected_shape``, when given); a corrupt chunk raises VQIError."""
    layout, streams = read_layout(data)
    if expected_shape is not None and tuple(expected_shape) != layout.shape:
        raise VQIError(f"vqi chunk holds shape {layout.shape}, expected {tuple(expected_shape)}")
    height, width = layout.image_shape[:2]
    images = []
    for number, stream in enumerate(streams):
        image = decode(bytes(stream), max_pixels=min(height * width, MAX_PIXELS))
        if image.shape != layout.image_shape:
            raise VQIError(
                f"image {number} of a vqi chunk is {image.shape}, expected {layout.image_shape}"
            )
        images.append(image)
    return np.stack(images).reshape(layout.shape)


def _options(config: Mapping[str, Any]) -> tuple[EncodeOptions, int | None]:
    """Checked encoder options and the channel count of a codec config."""
    unknown = set(config) - {*CONFIG_OPTIONS, "palette", "channels", "id"}
    if unknown:
        raise VQIError(f"unknown vqi codec option(s): {', '.join(sorted(unknown))}")
    palette = config.get("palette")
    if palette is not None:
        palette = np.asarray(palette)
        if palette.dtype.kind not in "iu" or np.any((palette < 0) | (palette > 255)):
            raise VQIError("palette must be a list of lists of integers 0..255")
        palette = palette.astype(np.uint8)
    options = {name: config[name] for name in CONFIG_OPTIONS if name in config}
    channels = config.get("channels")
    if channels is not None:
        channels = check_integer("channels", channels, 0, 4)
    return EncodeOptions(**options, palette=palette), channels


def _config(options: EncodeOptions, channels: int | None) -> dict[str, Any]:
    """The JSON configuration of checked options."""
    config: dict[str, Any] = {name: getattr(options, name) for name in CONFIG_OPTIONS}
    config["palette"] = None if options.palette is None else options.palette.tolist()
    config["channels"] = channels
    return config


class VQI(Codec):
    """numcodecs codec: chunks of uint8 images as .vqi streams (lossy).

    Keywords: ``colors``, ``compression``, ``method``, ``seed``, ``min_psnr``,
    ``dither`` as in ``vqformat.EncodeOptions``; ``palette``, a (k, C) dataset palette
    shared by every chunk; ``channels``, 0 for grey chunks without a channel axis, 1..4
    for a last axis of that many channels, None to infer it from each chunk's shape.
    """

    codec_id = CODEC_ID

    def __init__(self, **config: Any) -> None:
        self.options, self.channels = _options(config)

    def encode(self, buf: Any) -> bytes:
        return encode_chunk(buf, self.options, self.channels)

    def decode(self, buf: Any, out: Any = None) -> np.ndarray:
        chunk = decode_chunk(buf)
        if out is None:
            return chunk
        if np.asarray(out).nbytes != chunk.nbytes:
            raise VQIError(f"a vqi chunk of {chunk.nbytes} bytes does not fill out")
        return ndarray_copy(chunk, out)

    def get_config(self) -> dict[str, Any]:
        return {"id": CODEC_ID, **_config(self.options, self.channels)}

    def __repr__(self) -> str:
        colors = "shared palette" if self.options.palette is not None else self.options.colors
        return f"VQI(colors={colors!r}, compression={self.options.compression!r})"


@dataclass(frozen=True)
class VQICodec(ArrayBytesCodec):
    """Zarr v3 array-to-bytes codec (``serializer=VQICodec(...)``): lossy, takes
    ``VQI``'s keywords; the configuration (palette included) is kept in the array's
    metadata."""

    is_fixed_size = False
    options: EncodeOptions
    channels: int | None

    def __init__(self, **config: Any) -> None:
        options, channels = _options(config)
        object.__setattr__(self, "options", options)
        object.__setattr__(self, "channels", channels)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VQICodec:
        _, configuration = parse_named_configuration(data, CODEC_ID, require_configuration=False)
        return cls(**(configuration or {}))

    def to_dict(self) -> dict[str, Any]:
        return {"name": CODEC_ID, "configuration": _config(self.options, self.channels)}

    def validate(self, *, shape: tuple[int, ...], dtype: Any, chunk_grid: Any) -> None:
        if dtype.to_native_dtype() != np.uint8:
            raise VQIError(f"the vqi codec stores uint8 images, not {dtype}")

    async def _decode_single(self, chunk_bytes: Buffer, chunk_spec: Any) -> NDBuffer:
        chunk = decode_chunk(chunk_bytes.to_bytes(), chunk_spec.shape)
        return chunk_spec.prototype.nd_buffer.from_ndarray_like(chunk)

    async def _encode_single(self, chunk_array: NDBuffer, chunk_spec: Any) -> Buffer | None:
        data = encode_chunk(chunk_array.as_numpy_array(), self.options, self.channels)
        return chunk_spec.prototype.buffer.from_bytes(data)

    def compute_encoded_size(self, input_byte_length: int, chunk_spec: Any) -> int:
        raise NotImplementedError


def store_psnr(array: Any, source: Any, *, images_per_read: int = 64) -> float:
    """The PSNR (dB) of a stored array against its source, read a slab of the first
    axis at a time; ``inf`` when they are equal."""
    if tuple(array.shape) != tuple(np.shape(source)):
        raise VQIError(f"array shape {tuple(array.shape)} differs from {np.shape(source)}")
    squared, count = 0.0, 0
    for first in range(0, array.shape[0], images_per_read):
        part = slice(first, first + images_per_read)
        difference = np.asarray(array[part], np.float64) - np.asarray(source[part], np.float64)
        squared += float(np.square(difference).sum())
        count += difference.size
    mse = squared / count
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def images_to_zarr(
    images: Iterable[Any], store: Any, *, zarr_format: int = 3, **config: Any
) -> Any:
    """Write equal-shaped uint8 images (arrays, or paths read with Pillow) as one
    (N, H, W[, C]) Zarr array in ``store``, one image per chunk, through the vqi codec
    with ``config``; returns the array, ready for ``dask.array.from_zarr``."""
    import zarr

    stack = np.stack(list(_pixels(images)))
    chunks = (1, *stack.shape[1:])
    if zarr_format == 2:
        codec = {"compressors": VQI(**config), "filters": None}
    else:
        codec = {"serializer": VQICodec(**config), "compressors": None}
    array = zarr.create_array(
        store, shape=stack.shape, chunks=chunks, dtype="uint8", zarr_format=zarr_format, **codec
    )
    array[...] = stack
    return array


def _pixels(images: Iterable[Any]) -> Iterator[np.ndarray]:
    from PIL import Image

    for image in images:
        if isinstance(image, np.ndarray):
            yield image
        else:
            with Image.open(image) as opened:
                yield np.asarray(opened)


numcodecs.register_codec(VQI)
register_codec(CODEC_ID, VQICodec)
