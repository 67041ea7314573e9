"""Floyd-Steinberg error diffusion of pixels onto a fitted palette.

Error diffusion is sequential along each row (a pixel's error feeds its right-hand
neighbour), so it cannot be vectorized; it is left to Pillow's C implementation
(``Image.quantize(palette=...)``) rather than run as a per-pixel Python loop. Pillow
diffuses RGB pixels onto palettes of at most 256 entries; grey pixels go through RGB.
Dithering raises the mean squared error but hides banding in smooth gradients.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..errors import VQIError
from .palette import pack_keys

MAX_COLORS = 256  # the most palette entries Pillow diffuses onto
CHANNELS = (1, 3)  # grey and RGB; Pillow has no error diffusion with alpha


def check_ditherable(channels: int, colors: int) -> None:
    """Raise VQIError unless pixels of ``channels`` onto ``colors`` entries can be dithered."""
    if channels not in CHANNELS:
        raise VQIError(f"dithering needs grey or RGB pixels, not {channels} channels")
    if colors > MAX_COLORS:
        raise VQIError(f"dithering needs a palette of at most {MAX_COLORS} colours, not {colors}")


def diffuse(pixels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """(H, W) uint8 indices of (H, W, C) uint8 pixels onto a (k, C) palette, C = 1 or 3.

    Pixels whose colours are all palette entries have no error to diffuse and map
    exactly (Pillow's nearest-colour search works on 4-level boxes and would merge
    entries that close).
    """
    check_ditherable(palette.shape[1], len(palette))
    exact = _exact_indices(pixels.reshape(-1, pixels.shape[2]), palette)
    if exact is not None:
        return exact.reshape(pixels.shape[:2])
    rgb_palette = np.broadcast_to(palette, (len(palette), 3)) if palette.shape[1] == 1 else palette
    target = Image.new("P", (1, 1))
    target.putpalette(np.ascontiguousarray(rgb_palette).tobytes())
    rgb = np.broadcast_to(pixels, (*pixels.shape[:2], 3)) if pixels.shape[2] == 1 else pixels
    source = Image.fromarray(np.ascontiguousarray(rgb), "RGB")
    return np.asarray(source.quantize(palette=target, dither=Image.Dither.FLOYDSTEINBERG))


def _exact_indices(pixels: np.ndarray, palette: np.ndarray) -> np.ndarray | None:
    """Each (N, C) pixel's palette index if every pixel is a palette entry, else None."""
    keys, entry_keys = pack_keys(pixels), pack_keys(palette)
    order = np.argsort(entry_keys)
    positions = np.searchsorted(entry_keys, keys, sorter=order).clip(max=len(order) - 1)
    found = order[positions]
    if not np.array_equal(entry_keys[found], keys):
        return None
    return found.astype(np.uint8)
