"""Selective Floyd-Steinberg error diffusion of pixels onto a fitted palette.

Floyd-Steinberg in raster order makes pixel (y, x) wait for (y, x-1) and for the row
above up to (y-1, x+1). All pixels on the line x + 2y = t have no dependency among
themselves, so they are mapped together, one numpy step per line: W + 2H steps
instead of W·H pixel visits, with the exact raster-order result.

As in libimagequant, the error is diffused selectively: scaled by the strength and
by a map that is low where the picture is busy (texture and edges mask banding, and
there dither noise only costs detail), not carried where it is negligible, and
damped where it is large (the isolated off-colour pixels of plain error diffusion).
Pixels with alpha are diffused in the quantizer's composite space (``palette``);
fully transparent pixels take their nearest entry and neither take nor give error.
"""

from __future__ import annotations

import numpy as np

from ..errors import VQIError
from .palette import has_alpha, index_dtype, pack_keys, seen

# (row offset, column offset, share) of Floyd-Steinberg's error spreading.
_SPREAD = ((0, 1, 7 / 16), (1, -1, 3 / 16), (1, 0, 5 / 16), (1, 1, 1 / 16))
_CARRIED = 15 / 16  # libimagequant's damping: full diffusion overshoots into patterns
_NEGLIGIBLE = 0.25  # squared error carried, in palette mean squared errors, below which none is
_DAMPING = 0.75  # applied to an error larger than the largest expected one
_BUSY = 1.3  # local contrast, in palette RMS errors, at which the dither map is halved


def check_strength(strength: object) -> float:
    """A dithering strength 0..1 (True is 1, False 0) as a float, else VQIError."""
    if isinstance(strength, (bool, np.bool_)):
        return float(strength)
    if not isinstance(strength, (int, float, np.number)) or not 0 <= strength <= 1:
        raise VQIError(f"dither must be True, False or a strength 0..1, got {strength!r}")
    return float(strength)


def diffuse(pixels: np.ndarray, palette: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """(H, W) indices of (H, W, C) uint8 pixels onto a (k, C) palette, the error of each
    pixel spread to its neighbours, ``strength`` (0..1) of it at most. Pixels whose
    colours are all palette entries have no error to diffuse and map exactly."""
    from scipy.spatial import cKDTree

    height, width, channels = pixels.shape
    exact = _exact_indices(pixels.reshape(-1, channels), palette)
    if exact is not None:
        return exact.reshape(height, width)
    space = _space(pixels.reshape(-1, channels)).reshape(height, width, -1).astype(np.float32)
    entries = _space(palette).astype(np.float32)
    tree = cKDTree(entries)
    typical = _typical_error(space, tree)
    gain = (strength * _CARRIED * _dither_map(space, _BUSY * np.sqrt(typical))).astype(np.float32)
    if has_alpha(channels):
        gain[pixels[..., -1] == 0] = 0  # invisible: nothing to diffuse, nothing taken
    largest, negligible = max(2.4 * typical, 16.0**2 / 4), _NEGLIGIBLE * typical
    error = np.zeros((height + 1, width + 2, space.shape[2]), dtype=np.float32)
    indices = np.empty((height, width), dtype=index_dtype(len(palette)))
    for line in range(width + 2 * (height - 1)):
        rows = np.arange(max(0, (line - width + 2) // 2), min(height - 1, line // 2) + 1)
        columns = line - 2 * rows
        incoming = error[rows, columns + 1] * gain[rows, columns, None]
        incoming[np.einsum("ij,ij->i", incoming, incoming) < negligible] = 0
        target = space[rows, columns] + incoming
        _, nearest = tree.query(target)
        indices[rows, columns] = nearest
        residual = target - entries[nearest]
        large = np.einsum("ij,ij->i", residual, residual) > largest
        residual[large] *= _DAMPING
        for row_step, column_step, share in _SPREAD:
            error[rows + row_step, columns + 1 + column_step] += share * residual
    return indices


def _space(colors: np.ndarray) -> np.ndarray:
    """Where errors add up linearly and distance is visible error."""
    return seen(colors) if has_alpha(colors.shape[1]) else colors.astype(np.float64)


def _dither_map(space: np.ndarray, busy: float) -> np.ndarray:
    """(H, W) share of the error each pixel takes: 1 in smooth areas, falling with the
    local contrast (the root mean square deviation over the 3x3 neighbourhood), halved
    at ``busy``: where the picture varies more than the palette's error, that
    variation hides banding."""
    from scipy.ndimage import uniform_filter

    mean = uniform_filter(space, size=(3, 3, 1), mode="nearest")
    square_mean = uniform_filter(space * space, size=(3, 3, 1), mode="nearest")
    contrast = np.sqrt(np.clip(square_mean - mean * mean, 0, None).sum(axis=2))
    return 1 / (1 + (contrast / max(busy, 1.0)) ** 2)


def _typical_error(space: np.ndarray, tree) -> float:
    """The palette's mean squared error without dithering, on a sample of the pixels.
    Diffused error beyond a few times that (at least a 16-level step) is damped."""
    sample = space.reshape(-1, space.shape[2])[:: max(1, space.size // (space.shape[2] << 16))]
    distances, _ = tree.query(sample)
    return float(np.mean(distances**2))


def _exact_indices(pixels: np.ndarray, palette: np.ndarray) -> np.ndarray | None:
    """Each (N, C) pixel's palette index if every pixel is a palette entry, else None."""
    keys, entry_keys = pack_keys(pixels), pack_keys(palette)
    order = np.argsort(entry_keys)
    positions = np.searchsorted(entry_keys, keys, sorter=order).clip(max=len(order) - 1)
    found = order[positions]
    if not np.array_equal(entry_keys[found], keys):
        return None
    return found.astype(index_dtype(len(palette)))
