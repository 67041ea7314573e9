"""Palette fitting and index assignment: pixels -> palette + indices.

Fitting works on the image's distinct colours weighted by their pixel counts, which
gives the same k-means objective as fitting all pixels at a fraction of the cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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


def nearest(points: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Index of the nearest palette entry (squared Euclidean) for each point, in chunks."""
    centers = palette.astype(np.float32)
    center_norms = (centers**2).sum(axis=1)
    result = np.empty(len(points), dtype=np.uint16 if len(palette) > 256 else np.uint8)
    for start in range(0, len(points), _ASSIGN_CHUNK):
        chunk = points[start : start + _ASSIGN_CHUNK].astype(np.float32)
        distances = center_norms - 2.0 * chunk @ centers.T
        result[start : start + _ASSIGN_CHUNK] = distances.argmin(axis=1)
    return result


def quantize(pixels: np.ndarray, colors: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Palette of at most ``colors`` entries and one index per pixel for (N, C) uint8 pixels.

    An image with at most ``colors`` distinct colours gets exactly those colours.
    """
    table = color_table(pixels)
    if len(table.colors) <= colors:
        return table.colors, table.inverse.astype(
            np.uint16 if len(table.colors) > 256 else np.uint8
        )
    palette = fit_kmeans(table, colors, seed)
    return palette, nearest(table.colors, palette)[table.inverse]
