"""Out-of-core building blocks: read an image a band of rows at a time, sample it, map it.

Large inputs (a ``numpy.memmap``, or any array-like with ``shape``, ``dtype`` and row
slicing, such as h5py, zarr or dask arrays) are never converted whole: each band of
rows is read, used and dropped, so memory is bounded by the band size, not the image.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import VQIError
from . import palette as palette_fitting
from .palette import index_dtype, pack_keys, unpack_keys

BAND_PIXELS = 1 << 20
"""Pixels read at once when sampling or scanning an image."""

ASSIGN_BATCH = 1 << 14
"""New colours mapped per call of ``palette.assign``: bounds its distance matrix."""

MINIBATCH_PIXELS = 1 << 13
"""Samples per ``MiniBatchKMeans.partial_fit`` step."""

_TABLE_CHANNELS = 3  # a colour lookup table has 256**channels entries: 16 MiB at most


@dataclass(frozen=True)
class ImageRows:
    """A validated (H, W, C) uint8 image, read lazily a band of rows at a time."""

    source: Any
    height: int
    width: int
    channels: int

    @classmethod
    def of(cls, pixels: Any) -> ImageRows:
        """Validate an array or array-like without reading its pixels."""
        source = pixels if _is_array_like(pixels) else np.asarray(pixels)
        dtype, shape = np.dtype(source.dtype), tuple(source.shape)
        if dtype == np.bool_:
            raise VQIError("boolean arrays are ambiguous: convert to uint8 (0/255) first")
        if dtype != np.uint8:
            raise VQIError(f"pixels must be uint8, got {dtype}: scale and convert first")
        if len(shape) not in (2, 3) or (len(shape) == 3 and not 1 <= shape[2] <= 4):
            raise VQIError(
                f"pixels must have shape (H, W) or (H, W, C) with C in 1..4, got {shape}"
            )
        if shape[0] == 0 or shape[1] == 0:
            raise VQIError(f"image is empty: shape {shape}")
        channels = shape[2] if len(shape) == 3 else 1
        return cls(source, shape[0], shape[1], channels)

    @property
    def pixel_count(self) -> int:
        return self.height * self.width

    def band(self, first: int, rows: int) -> np.ndarray:
        """Rows ``first`` .. ``first + rows`` as (rows * W, C) pixels (a view when possible)."""
        band = np.asarray(self.source[first : first + rows])
        return band.reshape(-1, self.channels)

    def bands(self, rows: int) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, pixels) for consecutive bands of ``rows`` rows, top to bottom."""
        for first in range(0, self.height, rows):
            yield first, self.band(first, rows)

    def band_rows(self) -> int:
        """Rows per band so that a band holds about ``BAND_PIXELS`` pixels."""
        return max(1, min(self.height, BAND_PIXELS // self.width))


def _is_array_like(pixels: Any) -> bool:
    return all(hasattr(pixels, name) for name in ("shape", "dtype", "__getitem__"))


Weigh = Callable[[np.ndarray], np.ndarray]
"""(rows, W, C) uint8 pixels -> (rows * W,) weights, one per pixel in raster order."""


def sample_pixels(
    image: ImageRows, count: int, seed: int | Sequence[int] = 0, weigh: Weigh | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """(``count`` pixels drawn uniformly, with replacement, as (count, C); their weights
    by ``weigh``, or None without it), drawn band by band.

    Each band contributes in proportion to its size, so only one band is read at a
    time; the draw depends on the image, ``count`` and ``seed`` alone. An image of at
    most ``count`` pixels is returned whole instead. ``weigh`` sees one band at a time,
    so a neighbourhood it looks at is cut at band edges (one band for the whole image).
    """
    total = image.pixel_count
    if count >= total:
        pixels = np.array(image.band(0, image.height))
        return pixels, _weights_of(pixels, image.width, weigh)
    rng = np.random.default_rng(seed)
    sample = np.empty((count, image.channels), dtype=np.uint8)
    weights = None if weigh is None else np.empty(count)
    filled = 0
    for first, band in image.bands(image.band_rows()):
        end = (first * image.width + len(band)) * count // total
        positions = np.sort(rng.integers(0, len(band), end - filled))
        sample[filled:end] = band[positions]
        if weights is not None:
            weights[filled:end] = _weights_of(band, image.width, weigh)[positions]
        filled = end
    return sample, weights


def _weights_of(band: np.ndarray, width: int, weigh: Weigh | None) -> np.ndarray | None:
    """``weigh`` of (rows * W, C) pixels seen as the rows they are."""
    return None if weigh is None else weigh(band.reshape(-1, width, band.shape[1]))


class ColorSet:
    """The distinct colours met so far, tracked only until there are more than ``limit``.

    Past the limit it stops growing, so it never costs more than ``limit`` colours plus
    the batch being added.
    """

    def __init__(self, channels: int, limit: int) -> None:
        self.channels = channels
        self.limit = limit
        self._keys = np.empty(0, dtype=np.uint32)
        self.overflowed = False

    def add(self, pixels: np.ndarray) -> bool:
        """Record (N, C) pixels; false once the colours exceed the limit."""
        if not self.overflowed:
            self._keys = np.union1d(self._keys, pack_keys(pixels))
            self.overflowed = len(self._keys) > self.limit
        return not self.overflowed

    def colors(self) -> np.ndarray | None:
        """The sorted (n, C) distinct colours, or None past the limit."""
        return None if self.overflowed else unpack_keys(self._keys, self.channels)


def distinct_colors(image: ImageRows, limit: int) -> np.ndarray | None:
    """The image's sorted distinct colours if there are at most ``limit``, else None.

    Scans band by band and stops as soon as the limit is passed.
    """
    found = ColorSet(image.channels, limit)
    for _, band in image.bands(image.band_rows()):
        if not found.add(band):
            break
    return found.colors()


class StripAssigner:
    """Maps pixels to their nearest palette entry, assigning each distinct colour once.

    For up to three channels a lookup table over all colours (at most 16 MiB) remembers
    every colour met so far, so a strip costs one table gather plus the new colours.
    For four channels each strip's distinct colours are assigned (bounded by the strip).
    """

    def __init__(self, palette: np.ndarray) -> None:
        self.palette = palette
        channels = palette.shape[1]
        self._dtype = index_dtype(len(palette))
        self._table: np.ndarray | None = None
        self._known: np.ndarray | None = None
        if channels <= _TABLE_CHANNELS:
            self._table = np.zeros(256**channels, dtype=self._dtype)
            self._known = np.zeros(256**channels, dtype=np.bool_)

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        """One index per (N, C) pixel."""
        keys = pack_keys(pixels)
        if self._table is None:
            unique_keys, inverse = np.unique(keys, return_inverse=True)
            return self._assign_keys(unique_keys)[inverse.ravel()]
        new_keys = np.unique(keys[~self._known[keys]])
        self._table[new_keys] = self._assign_keys(new_keys)
        self._known[new_keys] = True
        return self._table[keys]

    def _assign_keys(self, keys: np.ndarray) -> np.ndarray:
        colors = unpack_keys(keys, self.palette.shape[1])
        result = np.empty(len(keys), dtype=self._dtype)
        for start in range(0, len(keys), ASSIGN_BATCH):
            stop = start + ASSIGN_BATCH
            result[start:stop] = palette_fitting.assign(colors[start:stop], self.palette)
        return result


def fit_stream(batches: Iterable[np.ndarray], colors: int, seed: int = 0) -> np.ndarray:
    """A palette of at most ``colors`` entries from a stream of (n, C) pixel samples.

    Samples flow through scikit-learn's ``MiniBatchKMeans.partial_fit`` in steps of
    ``MINIBATCH_PIXELS``, so memory is bounded by one step whatever the stream's length.
    When the whole stream holds at most ``colors`` distinct colours, those are returned
    exactly. Deterministic for a given stream and seed.
    """
    from sklearn.cluster import MiniBatchKMeans

    model = MiniBatchKMeans(n_clusters=colors, random_state=seed, n_init=1)
    pending = _Pending(max(colors, MINIBATCH_PIXELS))
    seen: ColorSet | None = None
    for batch in batches:
        seen = seen or ColorSet(batch.shape[1], colors)
        seen.add(batch)
        for step in pending.add(batch):
            model.partial_fit(step.astype(np.float32))
    if seen is None:
        raise VQIError("no pixels to fit a palette to")
    exact = seen.colors()
    if exact is not None:
        return exact
    rest = pending.drain()
    if rest is not None:
        model.partial_fit(rest.astype(np.float32))
    return palette_fitting.to_palette(model.cluster_centers_)


class _Pending:
    """Regroups incoming samples into steps of a fixed size (the first one large enough
    for k-means++ to pick every centre)."""

    def __init__(self, step: int) -> None:
        self._step = step
        self._parts: list[np.ndarray] = []
        self._size = 0

    def add(self, batch: np.ndarray) -> list[np.ndarray]:
        """Take ``batch``; return the whole steps now complete (the rest waits)."""
        self._parts.append(batch)
        self._size += len(batch)
        if self._size < self._step:
            return []
        joined = np.concatenate(self._parts)
        whole = len(joined) // self._step * self._step
        rest = joined[whole:]
        self._parts, self._size = [rest], len(rest)
        return np.split(joined[:whole], whole // self._step)

    def drain(self) -> np.ndarray | None:
        """The leftover samples, if any."""
        if not self._size:
            return None
        joined = np.concatenate(self._parts)
        self._parts, self._size = [], 0
        return joined
