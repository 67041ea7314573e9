"""Band scan: the pixel order that lets a byte-oriented compressor see two dimensions.

A strip is cut into bands of ``height`` rows; each band is read column by column,
top to bottom within a column, and the bands follow one another top to bottom (a
last band of fewer rows is read the same way). The pixel above is then the previous
symbol and the pixel to the left lies ``height`` symbols back, so LZ77 matches
reach both neighbours; with ``height`` = 1 it is the plain row-major order. Both
directions are a reshape and a transpose (spec/vqi.md section 7.1).
"""

from __future__ import annotations

import numpy as np


def band_scan(indices: np.ndarray, height: int) -> np.ndarray:
    """The (rows, width) indices as a 1-D array in band-scan order."""
    rows, width = indices.shape
    full = rows - rows % height
    bands = indices[:full].reshape(-1, height, width).transpose(0, 2, 1)
    return np.concatenate([bands.ravel(), indices[full:].T.ravel()])


def band_unscan(sequence: np.ndarray, rows: int, width: int, height: int) -> np.ndarray:
    """Invert :func:`band_scan`: ``sequence`` holds rows x width values in band-scan order."""
    full = rows - rows % height
    split = full * width
    out = np.empty((rows, width), dtype=sequence.dtype)
    out[:full] = sequence[:split].reshape(-1, width, height).transpose(0, 2, 1).reshape(full, width)
    out[full:] = sequence[split:].reshape(width, rows - full).T
    return out
