"""Selective Floyd-Steinberg error diffusion of pixels onto a fitted palette.

Floyd-Steinberg in raster order makes pixel (y, x) wait for (y, x-1) and for the row
above up to (y-1, x+1). All pixels on the line x + 2y = t have no dependency among
themselves, so they are mapped together, one numpy step per line: W + 2H steps
instead of W·H pixel visits, with the raster-order result. A line's pixels are a
strided slice of the flattened rows, and the error waiting for them is kept by line
and row, so every step reads and writes contiguous slices. The nearest entries of a
line's targets are one matrix product against the palette, on one BLAS thread
(threads only cost at this size).

The error is diffused selectively, as in libimagequant, with a dither map chosen
for structure (SSIM) and for the error a viewer sees at a distance (PSNR after a
blur): busy areas take most of it (their contrast hides the dither noise, and the
error a blur keeps is largest there; not all, as texture is dithered by its own
variation); smooth areas take a share that grows with the undithered error around
them (where the nearest entries band the picture, dithering restores it; where they
fit well, noise would only cost structure). With close entries (fine palettes), wide
patches of one nearest entry take more: their small error is alike across a band,
which a viewer sees at a distance (libimagequant dithers by such runs). Areas free of
noise, the rendered gradients and fills of icons and UI graphics, take all of it,
undamped, where the nearest entries leave an error: no grain hides their bands, as a
photograph's does. Small palettes that fit the picture closely (smooth pictures of
low contrast) take nearly all of it everywhere, small errors too: their bands are
faint at each pixel but alike across wide areas, as is the noise that removes them.
Elsewhere small incoming errors are dropped, so areas near an entry stay clean, and
large residuals are damped (the isolated off-colour pixels of plain error
diffusion); targets stay within a margin of the colours that exist.
Pixels with alpha are diffused in the quantizer's composite space (``palette``), soft
alpha edges less; fully transparent pixels take their nearest entry and neither take
nor give error.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import VQIError
from .kmeans import NearestEntry
from .palette import has_alpha, index_dtype, pack_keys, seen

_RIGHT = 7 / 16  # Floyd-Steinberg's share for (y, x+1)
# Floyd-Steinberg's shares for (y+1, x-1), (y+1, x), (y+1, x+1), by the line they are on
_BELOW = ((1, 3 / 16), (2, 5 / 16), (3, 1 / 16))
_CARRIED = 15 / 16  # libimagequant's damping: full diffusion overshoots into patterns
_NEGLIGIBLE = 0.25  # squared error carried, in palette mean squared errors, below which none is
_LARGEST = 2.4  # squared residual, in palette mean squared errors, above which it is damped,
_LARGEST_AT_LEAST = 8.0**2  # but never below an 8-level error
_DAMPING = 0.75
_BUSY = 1.3  # local contrast, in palette RMS errors, at which a smooth area's gain is half-way up
_BUSY_SHARE = 0.8  # the share of the error the busiest areas take (see _dither_map)
_BANDING_MSE = 5.0  # undithered MSE a channel, around a pixel, at which smooth areas take half
_BANDING_WINDOW = 7  # pixels across the neighbourhood that MSE is measured over
_SMOOTH = 2.0  # second difference, in levels, at which an area is half free of noise
_SMOOTH_REACH = 5  # pixels across the neighbourhood that must all be that smooth
_RELEASE_MSE = 0.35  # undithered MSE a channel at which noise-free areas are half released
_SOFT_EDGE = 16.0  # alpha levels spanned by a 3x3 neighbourhood where a soft edge takes half
_HARD_EDGE = 48.0  # span from which an alpha edge is a hard one again, and dithered
_OVERSHOOT = 0.1  # targets may leave the colour range by this share of it
_WHOLE_MAP_UP_TO = 64  # entries whose palettes use the whole dither map
_FINE_FROM, _FINE_SHARE = 256, 0.8  # entries from which palettes use this share of it
_FEW_UP_TO = 16  # entries whose palettes, where they fit closely, are dithered almost fully
_FAINT_MSE = 4.0  # undithered MSE a channel at which a small palette half fits closely
_FAINT_SHARE = 0.9  # the share of the rest of the error such a fit takes (see _faint_fit)
_BANDS_FROM = 16  # entries from which wide patches of one entry take more (_wide_bands)
_BAND_REACH = 2  # pixels around a pixel whose nearest entry it must share to be in a patch
_CHUNK = 1 << 12  # pixels mapped at once when measuring the undithered error
_EXACT_SAMPLE = 1 << 12  # pixels checked before a full check that all are entries


def check_strength(strength: object) -> float:
    """A dithering strength 0..1 (True is 1, False 0) as a float, else VQIError."""
    if isinstance(strength, (bool, np.bool_)):
        return float(strength)
    if not isinstance(strength, (int, float, np.number)) or not 0 <= strength <= 1:
        raise VQIError(f"dither must be True, False or a strength 0..1, got {strength!r}")
    return float(strength)


def diffuse(
    pixels: np.ndarray,
    palette: np.ndarray,
    strength: float = 1.0,
    carry: np.ndarray | None = None,
) -> np.ndarray:
    """(H, W) indices of (H, W, C) uint8 pixels onto a (k, C) palette, the error of each
    pixel spread to its neighbours, ``strength`` (0..1) of it at most. Pixels whose
    colours are all palette entries have no error to diffuse and map exactly.

    ``carry``, a (W, D) float32 array from ``carried_error``, joins the strips of a
    larger image without seams: it holds the error waiting for the first row (the
    previous strip's) and is overwritten with the error the last row passes on.
    """
    from threadpoolctl import threadpool_limits

    height, width, channels = pixels.shape
    exact = _exact_indices(pixels.reshape(-1, channels), palette)
    if exact is not None:
        if carry is not None:
            carry[:] = 0
        return exact.reshape(height, width)
    space = _space(pixels.reshape(-1, channels)).reshape(height, width, -1)
    nearest = NearestEntry(_space(palette))
    with threadpool_limits(limits=1, user_api="blas"):
        shares = _shares(pixels, space, nearest, strength)
        if carry is None:
            carry = carried_error(width, channels)
        return _walk(space, shares, nearest, _target_bounds(channels), carry)


class _Shares(NamedTuple):
    """How much of the error each pixel takes and passes on."""

    gain: np.ndarray  # (H, W) share of the incoming error each pixel takes
    damping: np.ndarray  # (H, W) share of a large residual it passes on
    negligible: float  # squared incoming error below which none is taken
    largest: float  # squared residual above which it is damped


def _shares(
    pixels: np.ndarray, space: np.ndarray, nearest: NearestEntry, strength: float
) -> _Shares:
    """The shares of the error for (H, W, C) ``pixels``, measured on the undithered
    picture: the dither map, raised for small palettes that fit closely and for wide
    patches of one entry; thresholds in the undithered mean squared error."""
    errors, indices = _nearest_entries(space, nearest)
    typical = float(errors.mean())
    colors = len(nearest.entries)
    noiseless = _noiseless(pixels)
    faint = _faint_fit(colors, typical / space.shape[2])
    gain = _palette_share(colors) * _dither_map(space, errors, typical, noiseless)
    gain += (1 - gain) * _FAINT_SHARE * faint
    gain += (1 - gain) * _wide_bands(indices, noiseless, colors)
    return _Shares(
        gain=strength * _CARRIED * _visible_gain(pixels, gain),
        damping=_DAMPING + (1 - _DAMPING) * noiseless,
        negligible=_NEGLIGIBLE * (1 - faint) * typical,
        largest=max(_LARGEST * typical, _LARGEST_AT_LEAST),
    )


def carried_error(width: int, channels: int) -> np.ndarray:
    """No error waiting for the first row of a strip ``width`` pixels wide, as
    ``diffuse`` takes it: the start of an image (``_space`` keeps one value a channel)."""
    return np.zeros((width, channels), np.float32)


def _walk(
    space: np.ndarray,
    shares: _Shares,
    nearest: NearestEntry,
    bounds: tuple[np.ndarray, np.ndarray],
    carry: np.ndarray,
) -> np.ndarray:
    """Floyd-Steinberg over the lines x + 2y = t, a large residual scaled by its pixel's
    ``damping``. With rows padded to W + 2 values, a line's pixels lie W apart in the
    flattened image. The error waiting for them is kept by line and row in a ring of
    four lines: the error of (y, x) on line t goes to line t + 1 at rows y and y + 1
    and to lines t + 2 and t + 3 at row y + 1, all contiguous slices (scattered
    writes across rows cost more than the arithmetic).
    Row H of the ring is the row below: pixel (H, x) is on line x + 2H, where its
    waiting error is moved to ``carry``, which first gave row 0 its error."""
    height, width, dims = space.shape
    row = width + 2
    targets = _padded(space, row)
    gains = _padded(shares.gain[..., None], row)
    dampings = _padded(shares.damping[..., None], row)[:, 0]
    ring = np.zeros((4, height + 1, dims), np.float32)
    found = np.zeros(height * row, dtype=index_dtype(len(nearest.entries)))
    lines = width + 2 * height - 2
    for line in range(lines):
        first = max(0, (line - width + 2) // 2)
        last = min(height - 1, line // 2) + 1
        start = line + 1 + first * width  # pixel (first, line - 2 first), padded
        here = slice(start, start + (last - first) * width, width)
        waiting = ring[line % 4]
        if line < width:
            waiting[0] += carry[line]
        incoming = waiting[first:last] * gains[here]
        _pass_on(waiting, line, height, carry)
        waiting[:] = 0
        incoming[_squares(incoming) < shares.negligible] = 0
        target = np.clip(targets[here] + incoming, *bounds)
        chosen = nearest(target)
        found[here] = chosen
        residual = target - nearest.entries[chosen]
        large = _squares(residual) > shares.largest
        residual[large] *= dampings[here][large, None]
        ring[(line + 1) % 4, first:last] += _RIGHT * residual
        for offset, share in _BELOW:
            ring[(line + offset) % 4, first + 1 : last + 1] += share * residual
    for line in range(lines, lines + 2):  # the row below's last two pixels
        _pass_on(ring[line % 4], line, height, carry)
    return found.reshape(height, row)[:, 1 : width + 1]


def _pass_on(waiting: np.ndarray, line: int, height: int, carry: np.ndarray) -> None:
    """Move the error waiting on ``line`` for the row below the strip into ``carry``."""
    column = line - 2 * height
    if 0 <= column < len(carry):
        carry[column] = waiting[height]


def _padded(values: np.ndarray, row: int) -> np.ndarray:
    """(H, W, D) float32 values as flattened rows of ``row`` values, one zero before each."""
    height, width, dims = values.shape
    padded = np.zeros((height, row, dims), np.float32)
    padded[:, 1 : width + 1] = values
    return padded.reshape(-1, dims)


def _squares(values: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", values, values)


def _space(colors: np.ndarray) -> np.ndarray:
    """Where errors add up linearly and distance is visible error (float32)."""
    return (seen(colors) if has_alpha(colors.shape[1]) else colors).astype(np.float32)


def _target_bounds(channels: int) -> tuple[np.ndarray, np.ndarray]:
    """The box of all colours in ``_space``, widened by ``_OVERSHOOT`` of it: error
    pushing a target beyond cannot be shown, and would only pile up."""
    corners = np.stack(np.meshgrid(*[[0, 255]] * channels, indexing="ij"), axis=-1)
    space = _space(corners.reshape(-1, channels).astype(np.uint8))
    low, high = space.min(axis=0), space.max(axis=0)
    margin = _OVERSHOOT * (high - low)
    return low - margin, high + margin


def _palette_share(colors: int) -> float:
    """The share of the dither map a palette of ``colors`` entries uses: all of it up to
    ``_WHOLE_MAP_UP_TO``, falling in log2 k to ``_FINE_SHARE`` at ``_FINE_FROM``. Entries
    that close leave little banding for dithering to remove, and its noise costs
    structure: at k = 256 the whole map gave SSIM 0.0012 below pngquant (dithered) on
    five photos no setting had been chosen on, while blurred PSNR was 1.8 dB above;
    0.8 of it is above in both on those and on tools/bench.py's photos (0.9 of it at
    k <= 64 lost blurred PSNR)."""
    return 1 - (1 - _FINE_SHARE) * _log_position(colors, _WHOLE_MAP_UP_TO, _FINE_FROM)


def _faint_fit(colors: int, error: float) -> float:
    """How closely a small palette fits the picture, 0..1, from its undithered mean
    squared error a channel: 1 well under ``_FAINT_MSE``, falling as fourth powers,
    and scaled in log2 k from all at ``_FEW_UP_TO`` entries to none at
    ``_WHOLE_MAP_UP_TO``. Such a fit is a smooth picture of low contrast (translucent
    overlays, soft graphics) whose bands are an error small at each pixel, so the
    dither map leaves most of it and small incoming errors are dropped, yet alike
    across wide areas, which a blur keeps; the noise that removes it is as faint. Nine
    translucent wallpaper overlays (Debian's MATE backgrounds) at k = 16 had their
    dithered PSNR after a blur at 54.5 dB against pngquant's 59.2 (median) without
    it, 59.4 with it (SSIM 0.9863 and 0.9824, pngquant 0.9822); eight icons kept SSIM
    above pngquant's (0.9758 and 0.9729, pngquant 0.9717). Photographs at k = 16 fit
    far less closely, and keep the map."""
    few = 1 - _log_position(colors, _FEW_UP_TO, _WHOLE_MAP_UP_TO)
    return few / (1 + (error / _FAINT_MSE) ** 4)


def _log_position(colors: int, low: int, high: int) -> float:
    """Where ``colors`` lies from ``low`` (0) to ``high`` (1) entries in log2, clipped."""
    return float(np.clip(np.log2(colors / low) / np.log2(high / low), 0, 1))


def _noiseless(pixels: np.ndarray) -> np.ndarray:
    """(H, W) float32, 1 where the area around a pixel is free of noise, falling to 0
    in grain: the largest second difference of any channel, across or down, anywhere
    in the ``_SMOOTH_REACH`` neighbourhood, against ``_SMOOTH`` levels (steeply, as
    fourth powers). Rendered gradients step by rounding only; a photograph's smoothest
    areas have grain, which dithers them already. Judged on the stored values, so a
    translucent photograph keeps the grain its alpha scales down in the composite."""
    from scipy.ndimage import maximum_filter

    rough = np.zeros(pixels.shape[:2], np.int16)
    for channel in range(pixels.shape[2]):  # plane by plane: contiguous and small
        values = np.pad(pixels[..., channel].astype(np.int16), 1, mode="edge")
        middle = 2 * values[1:-1, 1:-1]
        np.maximum(rough, np.abs(values[1:-1, :-2] + values[1:-1, 2:] - middle), out=rough)
        np.maximum(rough, np.abs(values[:-2, 1:-1] + values[2:, 1:-1] - middle), out=rough)
    rough = maximum_filter(rough, size=_SMOOTH_REACH, mode="nearest")
    return (1 / (1 + (rough.astype(np.float32) / _SMOOTH) ** 4)).astype(np.float32)


def _visible_gain(pixels: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """The (H, W) share of the error each pixel takes, ``gain``, less on soft alpha
    edges, none where invisible (nothing to diffuse, nothing taken)."""
    if has_alpha(pixels.shape[-1]):
        alpha = pixels[..., -1]
        gain *= 1 - _soft_edges(alpha)
        gain[alpha == 0] = 0
    return gain


def _soft_edges(alpha: np.ndarray) -> np.ndarray:
    """(H, W) float32 share of the error that soft alpha edges (feathered masks,
    vignettes) give up: dithering draws speckles into their smooth outline, which SSIM
    and the eye see. An edge is soft where alpha spans some levels across the 3x3
    neighbourhood, half-way at ``_SOFT_EDGE``, and no longer soft where it jumps by
    about ``_HARD_EDGE`` or more (an antialiased outline, one or two pixels wide, which
    dithering smooths). On tools/bench.py's RGBA images at k = 16 this raised the
    dithered median SSIM from 0.7817 to 0.7948 (pngquant 0.7841) for 0.2 dB of blurred
    PSNR (1.4 dB above pngquant)."""
    from scipy.ndimage import maximum_filter, minimum_filter

    span = (maximum_filter(alpha, size=3) - minimum_filter(alpha, size=3)).astype(np.float32)
    soft = 1 - 1 / (1 + (span / _SOFT_EDGE) ** 2)
    return (soft / (1 + (span / _HARD_EDGE) ** 4)).astype(np.float32)


def _dither_map(
    space: np.ndarray, errors: np.ndarray, typical: float, noiseless: np.ndarray
) -> np.ndarray:
    """(H, W) float32 share of the error each pixel takes: a floor in smooth areas,
    rising with the local contrast (the root mean square deviation over the 3x3
    neighbourhood), half-way at ``_BUSY`` palette RMS errors, to ``_BUSY_SHARE``: the
    nearest entries of texture already vary, and all of the error there cost SSIM
    (160-pixel thumbnails of fourteen photos at k = 256: dithered median 0.9880 against
    pngquant's 0.9884, 0.9886 at 0.8, for blurred PSNR 1.3 and 0.9 dB above its). The
    floor grows with the undithered error around the pixel, as squares, half-way at
    ``_BANDING_MSE``: where the nearest entries leave a large error, bands show, where
    they fit well, dither noise would cost more structure than it restores. Areas free
    of noise (``noiseless``) take all of it where their undithered error reaches about
    half a level (``_RELEASE_MSE``): without grain, such error shows as bands, while
    below it the entries fit (the flat fills of an icon at k = 64), and noise would
    cost SSIM: releasing them all had the icons' median SSIM at k = 64 level with
    pngquant's."""
    from scipy.ndimage import uniform_filter

    dims = space.shape[2]
    mean = uniform_filter(space, size=3, axes=(0, 1), mode="nearest")
    square_mean = uniform_filter(space * space, size=3, axes=(0, 1), mode="nearest")
    contrast = np.clip(square_mean - mean * mean, 0, None).sum(axis=2)
    busy = contrast / max(_BUSY**2 * typical, 1.0)
    banding = (uniform_filter(errors, size=_BANDING_WINDOW, mode="nearest") / dims) ** 2
    floor = banding / (banding + _BANDING_MSE**2)
    rise = np.maximum(_BUSY_SHARE - floor, 0)
    gain = floor + rise * busy / (1 + busy)
    release = noiseless * banding / (banding + _RELEASE_MSE**2)
    return (gain + (1 - gain) * release).astype(np.float32)


def _nearest_entries(space: np.ndarray, nearest: NearestEntry) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) squared distance of each pixel to its nearest entry, and (H, W) that
    entry's index: the picture without dithering."""
    points = space.reshape(-1, space.shape[2])
    errors = np.empty(len(points), np.float32)
    indices = np.empty(len(points), index_dtype(len(nearest.entries)))
    for start in range(0, len(points), _CHUNK):
        chunk = points[start : start + _CHUNK]
        indices[start : start + _CHUNK] = found = nearest(chunk)
        errors[start : start + _CHUNK] = _squares(chunk - nearest.entries[found])
    return errors.reshape(space.shape[:2]), indices.reshape(space.shape[:2])


def _wide_bands(indices: np.ndarray, noiseless: np.ndarray, colors: int) -> np.ndarray:
    """(H, W) float32 share of the rest of the error that pixels inside wide patches of
    one nearest entry take: the share of the pixels within ``_BAND_REACH`` that have
    the same nearest entry, in areas with grain (noise-free ones are released by the
    dither map), scaled in log2 k from none at ``_BANDS_FROM`` entries to all at
    ``_FINE_FROM``. A smooth gradient on a fine palette falls into such patches, each a
    small error alike across it, which a blur keeps: fifteen photographs scaled to 1600
    pixels (Debian's MATE and UKUI wallpapers: bokeh, skies, water) at k = 256 had their
    dithered PSNR after a blur 0.8 dB below pngquant's (paired median) without it, 0.5
    dB above with it, SSIM still 0.0085 above. Small palettes' bands have large errors,
    which the dither map's floor already diffuses; this share there cost SSIM for little."""
    scale = _log_position(colors, _BANDS_FROM, _FINE_FROM)
    if scale == 0:
        return np.zeros(indices.shape, np.float32)
    reach = _BAND_REACH
    height, width = indices.shape
    padded = np.pad(indices, reach, mode="edge")
    same = np.zeros(indices.shape, np.float32)
    for dy in range(2 * reach + 1):
        for dx in range(2 * reach + 1):
            if (dy, dx) != (reach, reach):
                same += padded[dy : dy + height, dx : dx + width] == indices
    return (scale / ((2 * reach + 1) ** 2 - 1)) * same * (1 - noiseless)


def _exact_indices(pixels: np.ndarray, palette: np.ndarray) -> np.ndarray | None:
    """Each (N, C) pixel's palette index if every pixel is a palette entry, else None
    (known from a sample of the pixels for most images)."""
    entry_keys = pack_keys(palette)
    order = np.argsort(entry_keys)

    def lookup(keys: np.ndarray) -> np.ndarray | None:
        positions = np.searchsorted(entry_keys, keys, sorter=order).clip(max=len(order) - 1)
        found = order[positions]
        return found if np.array_equal(entry_keys[found], keys) else None

    if lookup(pack_keys(pixels[:: max(1, len(pixels) // _EXACT_SAMPLE)])) is None:
        return None
    found = lookup(pack_keys(pixels))
    return None if found is None else found.astype(index_dtype(len(palette)))
