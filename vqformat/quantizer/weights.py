"""Per-pixel fit weights that lean the palette towards smooth areas.

Quantization error in a smooth area shows as structure (contours, blotches), while
in a busy one the local contrast masks it; SSIM scores the same way, its loss from an
error of variance e being about e / (2 var + C2) for an area of local variance var.
So a pixel weighs 1 / (1 + var / CONTRAST**2), var the mean over the channels of the
variance in its 3x3 neighbourhood: 1 in flat areas, 1/2 where the local standard
deviation is ``CONTRAST``. Only the starts of the k-means fit use the weights
(``palette.fit_kmeans``); the chosen one then converges on the true counts, which keeps
most of the PSNR.
"""

from __future__ import annotations

import numpy as np

from .palette import is_grey

CONTRAST = 16.0
"""Local standard deviation (0..255 scale) at which a pixel weighs half as much. Chosen
on tools/bench.py's six photos. Against the unweighted fit there, medians at k = 16, 64
and 256: SSIM +0.0005, +0.0004 and +0.0008 (the photo furthest below pngquant --nofs
rises from -0.0017 to +0.0006 at k = 64 and from -0.0022 to 0.0000 at 256) for -0.03,
-0.01 and -0.06 dB. 5x5 and 7x7 windows and CONTRAST from 8 to 32 traded SSIM for PSNR
about alike; weighting the exact stage too cost 0.1-0.35 dB more. The gain comes from
where the k-means++ seeds fall: weighting the coarse Lloyd iterations alone gained
little."""
WINDOW = 3


def smoothness_weights(image: np.ndarray) -> np.ndarray:
    """(H * W,) float64 weights in (0, 1] of an (H, W, C) uint8 image, raster order.
    Grey pixels (equal channels) all weigh 1: their exact fit takes no weights, and the
    filters would cost 0.06 s a megapixel for nothing."""
    if is_grey(image.reshape(-1, image.shape[-1])):
        return np.ones(image.shape[0] * image.shape[1])
    from scipy.ndimage import uniform_filter

    values = image.astype(np.float32)
    window = (WINDOW, WINDOW, 1)
    mean = uniform_filter(values, window)
    variance = uniform_filter(values * values, window) - mean * mean
    local = np.maximum(variance, 0).mean(axis=2, dtype=np.float64)
    return (1 / (1 + local / CONTRAST**2)).ravel()
