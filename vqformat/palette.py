"""Palette fitting and index assignment: pixels -> palette + indices.

Fitting works on the image's distinct colours weighted by their pixel counts, which
gives the same k-means objective as fitting all pixels at a fraction of the cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .bitpack import index_dtype
from .container import bits_for_colors
from .errors import VQIError

_ASSIGN_CHUNK = 1 << 16  # rows of the distance matrix computed at once


@dataclass(frozen=True)
class ColorTable:
    """The distinct colours of an image, their pixel counts, and each pixel's colour number."""

    colors: np.ndarray  # (n, C) uint8
    counts: np.ndarray  # (n,) int64
    inverse: np.ndarray  # (pixels,) index into colors


def color_table(pixels: np.ndarray) -> ColorTable:
    """Distinct colours of an (N, C) uint8 array, found by sorting packed 32-bit keys."""
    channels = pixels.shape[1]
    keys = np.zeros(len(pixels), dtype=np.uint32)
    for channel in range(channels):
        keys |= pixels[:, channel].astype(np.uint32) << np.uint32(8 * (channels - 1 - channel))
    unique_keys, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    shifts = np.arange(channels - 1, -1, -1, dtype=np.uint32) * np.uint32(8)
    colors = ((unique_keys[:, None] >> shifts) & np.uint32(0xFF)).astype(np.uint8)
    return ColorTable(colors, counts, inverse.ravel())


def fit_kmeans(table: ColorTable, colors: int, seed: int = 0) -> np.ndarray:
    """k-means (scikit-learn) on the distinct colours weighted by count; returns (k, C) uint8."""
    from sklearn.cluster import KMeans

    model = KMeans(n_clusters=colors, n_init=1, random_state=seed)
    model.fit(table.colors.astype(np.float32), sample_weight=table.counts)
    centers = np.clip(np.rint(model.cluster_centers_), 0, 255).astype(np.uint8)
    return np.unique(centers, axis=0)


METHODS = {"kmeans": fit_kmeans}
DEFAULT_METHOD = "kmeans"


def fit(
    pixels: np.ndarray, colors: int, *, method: str = DEFAULT_METHOD, seed: int = 0
) -> np.ndarray:
    """A palette of at most ``colors`` distinct entries for (N, C) uint8 pixels.

    Pixels with at most ``colors`` distinct colours get exactly those colours. The
    pixels may be a sample of a larger image; ``assign`` then maps every pixel.
    """
    return _fit_table(color_table(pixels), colors, method, seed)


def _fit_table(table: ColorTable, colors: int, method: str, seed: int) -> np.ndarray:
    if len(table.colors) <= colors:
        return table.colors
    try:
        fitter = METHODS[method]
    except KeyError:
        raise VQIError(
            f"unknown palette method {method!r}; choose one of {', '.join(METHODS)}"
        ) from None
    return fitter(table, colors, seed)


def assign(pixels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Index of the nearest palette entry (squared Euclidean) for each (N, C) pixel, in chunks."""
    centers = palette.astype(np.float32)
    center_norms = (centers**2).sum(axis=1)
    result = np.empty(len(pixels), dtype=index_dtype(bits_for_colors(len(palette))))
    for start in range(0, len(pixels), _ASSIGN_CHUNK):
        chunk = pixels[start : start + _ASSIGN_CHUNK].astype(np.float32)
        distances = center_norms - 2.0 * chunk @ centers.T
        result[start : start + _ASSIGN_CHUNK] = distances.argmin(axis=1)
    return result


def quantize(
    pixels: np.ndarray, colors: int, *, method: str = DEFAULT_METHOD, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Palette and one index per pixel for (N, C) uint8 pixels held in memory.

    Assigns each distinct colour once and spreads the result to the pixels.
    """
    table = color_table(pixels)
    palette = _fit_table(table, colors, method, seed)
    if palette is table.colors:
        return palette, table.inverse.astype(index_dtype(bits_for_colors(len(palette))))
    return palette, assign(table.colors, palette)[table.inverse]
