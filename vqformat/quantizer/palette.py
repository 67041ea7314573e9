"""Palette fitting and index assignment: pixels -> palette + indices.

Colour images are fitted by k-means (``kmeans``, numpy) on the image's distinct colours
weighted by their pixel counts, the same objective as k-means on all pixels at a
fraction of the cost. To converge quickly the fit runs coarse to fine: greedy
k-means++ seeds and Lloyd iterations on a histogram reduced to 6 bits a channel
(each bin standing at the mean of its colours), then Lloyd iterations on the exact
distinct colours from there. Small palettes try a few starts on the coarse histogram
and refine only the best.
1-channel data gets the exact minimum-MSE palette (``grey``). Other methods:
``minibatch`` (bounded time on huge colour sets), ``uniform`` and ``quantile``
(KBinsDiscretizer's strategies, a grid of per-channel levels). Assignment is an exact
nearest-neighbour search (k-d tree) over the distinct colours, spread to the pixels
through the colour table. Pixel weights, if given (``weights``: less in busy areas),
weigh the coarse histogram the starts run on, so that more entries serve the smooth
areas, where error shows; the chosen start then converges on the true counts.
Colours with alpha (LA, RGBA) are fitted and assigned as a viewer sees them (``seen``:
the error of the image composited over black and over white), so invisible colour
differences cost nothing; all fully transparent pixels share one entry, (0, ..., 0).
Opaque RGBA is fitted as its colour channels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache

import numpy as np

from ..errors import VQIError
from . import grey, kmeans
from .large import fit_large_kmeans

_ASSIGN_CHUNK = 1 << 16  # pixels looked up in the k-d tree at once
# Seeds and first iterations run on this many bits a channel: 5 bits is cheaper but
# lumps smooth gradients into few heavy bins, whose seeds settle in poorer optima.
_COARSE_BITS = 6
# Images with at most this many distinct colours a palette entry skip the coarse stage:
# the bins lump the few heavy colours of graphics. skimage's logo (2139 colours) at
# k = 256 gives 55.0 dB coarse, 58.8 dB exact; GNOME's 512-pixel camera-web icon (4418
# colours) 53.5 coarse, 55.4 exact. Photos have more colours, and their starts need the
# bins' weights (``weights``).
_EXACT_FIT_PER_ENTRY = 64
_FEW_POINTS, _MANY_RESTARTS = 4096, 8  # see _restarts
_TABLE_OFFSET, _TABLE_SCALE = 127.5, 2 / 3  # see _table_points
# Lloyd stops when an iteration lowers the error by less than this fraction, in the coarse
# and the exact stage: on the bench photos 1e-3 gave 0.01-0.04 dB less than scikit-learn's
# KMeans (tol 1e-3 on centre moves), 3e-4 as much or more, 1e-4 0.01 dB more for twice the time.
_TOLERANCE = 3e-4
_MINIBATCH_SIZE = 4096
LARGE_PALETTE = 1024
"""From this many colours k-means runs with k-d tree assignment (``large``): Lloyd by
distances to every centre costs N·k a step, tens of seconds at k = 4096 on a photo."""
_LARGE_BITS, _BINS_PER_ENTRY = 7, 8  # see _bins
# Weight of the straight colour in the assignment space of images with alpha: it only
# separates entries that look alike (at most 0.06 in squared distance, below rounding).
_TIE_BREAK = 1 / 2048

Fitter = Callable[["ColorTable", int, int], np.ndarray]
"""(colour table, at most this many colours, seed) -> (k, C) centres, float or uint8, in
the table's coordinates (``to_palette`` rounds them)."""


@dataclass(frozen=True)
class ColorTable:
    """The distinct colours of an image, their pixel counts, and each pixel's colour number;
    optionally the fit weights of their pixels, summed (``weights.smoothness_weights``)."""

    colors: np.ndarray  # (n, C) uint8
    counts: np.ndarray  # (n,) int64
    inverse: np.ndarray  # (pixels,) index into colors
    weights: np.ndarray | None = None  # (n,) float64, for the fit's starts; None: the counts
    points: np.ndarray | None = None  # (n, C) float32 where ``colors`` are rounded; None: exact

    def positions(self) -> np.ndarray:
        """(n, C) float32: where the colours really are, for the fit to converge on."""
        return self.colors.astype(np.float32) if self.points is None else self.points


def pack_keys(pixels: np.ndarray, bits: int = 8) -> np.ndarray:
    """One uint32 per (N, C) pixel holding its top ``bits`` of each channel, first channel
    highest: colours compare, sort and deduplicate as keys."""
    channels = pixels.shape[1]
    keys = np.zeros(len(pixels), dtype=np.uint32)
    for channel in range(channels):
        value = pixels[:, channel].astype(np.uint32) >> np.uint32(8 - bits)
        keys |= value << np.uint32(bits * (channels - 1 - channel))
    return keys


def color_table(pixels: np.ndarray, weights: np.ndarray | None = None) -> ColorTable:
    """Distinct colours of an (N, C) uint8 array, found by sorting packed 32-bit keys,
    with the (N,) pixel ``weights``, if given, summed per colour."""
    channels = pixels.shape[1]
    unique_keys, inverse, counts = np.unique(
        pack_keys(pixels), return_inverse=True, return_counts=True
    )
    inverse = inverse.ravel()
    summed = None if weights is None else np.bincount(inverse, weights, len(unique_keys))
    return ColorTable(unpack_keys(unique_keys, channels), counts, inverse, summed)


def unpack_keys(keys: np.ndarray, channels: int) -> np.ndarray:
    """The (N, C) colours of 8-bit ``pack_keys`` output."""
    shifts = np.arange(channels - 1, -1, -1, dtype=np.uint32) * np.uint32(8)
    return ((keys[:, None] >> shifts) & np.uint32(0xFF)).astype(np.uint8)


def reduced_histogram(
    table: ColorTable, bits: int, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(mean colour float32, weight) of each occupied bin of a ``bits``-a-channel grid,
    the colours weighted by ``weights`` (one per colour; by default their counts)."""
    weights = table.counts if weights is None else weights
    _, bins = np.unique(pack_keys(table.colors, bits), return_inverse=True)
    bins = bins.ravel()
    totals = np.bincount(bins, weights=weights)
    positions = table.positions()
    sums = [
        np.bincount(bins, weights=weights * positions[:, channel])
        for channel in range(positions.shape[1])
    ]
    return (np.stack(sums, axis=1) / totals[:, None]).astype(np.float32), totals


def to_palette(centers: np.ndarray) -> np.ndarray:
    """Round float centres to distinct uint8 colours."""
    return np.unique(np.clip(np.rint(centers), 0, 255).astype(np.uint8), axis=0)


def _restarts(colors: int, points: int) -> int:
    """Independent k-means++ starts on ``points`` weighted points: two for small
    palettes, where a single run's local optimum is furthest from the best (four gained
    nothing on tools/bench.py's photos at k = 16 and took 60% longer), eight when the
    points are as few as a graphic's (their optima spread wider, and a start costs
    little: at k = 16 on matplotlib's Minduka icon the seeds 0-2 gave 0.3 dB apart);
    one from k = 128, where starts differ little."""
    if colors > 64:
        return 1
    return _MANY_RESTARTS if points <= _FEW_POINTS else 2


@cache
def _thread_pools():
    """threadpoolctl's view of the loaded OpenMP/BLAS libraries, taken once: building it
    scans the process's libraries, which costs milliseconds a call."""
    import sklearn.cluster  # noqa: F401  (loads the OpenMP runtime to be limited)
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _one_thread():
    """One BLAS thread for the k-means products: these problems are small and threads
    only contend (measured slower on a loaded two-core machine even for k = 256)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def fit_kmeans(table: ColorTable, colors: int, seed: int = 0) -> np.ndarray:
    """k-means, coarse to fine: seed and converge on a coarse histogram, then continue
    on the exact colours (the start is close, so few iterations). Several starts run
    through the cheap coarse stage; only the one with the least error there is
    refined. The table's weights, if any, weigh the histogram the starts run on: they
    choose where entries go (smooth areas); the chosen start then converges on the
    counts, coarse (most of the way back, cheaply) and exact."""
    if table.colors.shape[1] == 1:
        return fit_exact_grey(table, colors, seed)
    exact = (table.positions(), table.counts.astype(np.float64))
    if colors >= LARGE_PALETTE:
        return fit_large_kmeans(*exact, colors, seed, _small_kmeans, _bins(table, colors))
    coarse = reduced_histogram(table, _COARSE_BITS)
    if len(coarse[0]) <= colors or len(exact[0]) <= _EXACT_FIT_PER_ENTRY * colors:
        # Too few bins to seed from, or few colours (graphics), which the bins would
        # lump together while the exact fit costs little: fit the exact colours.
        coarse = exact
    starts_on = coarse
    if coarse is not exact and table.weights is not None:
        starts_on = reduced_histogram(table, _COARSE_BITS, table.weights)
    best, least_error = exact[0][:0], np.inf
    with _one_thread():
        for start in range(_restarts(colors, len(starts_on[0]))):
            init = kmeans.seeds(*starts_on, colors, seed + start)
            centers, error = kmeans.lloyd(*starts_on, init, _TOLERANCE)
            if error < least_error:
                best, least_error = centers, error
        for refined in (coarse, exact):
            if refined is not starts_on:
                best, _ = kmeans.lloyd(*refined, best, _TOLERANCE)
    return best


def _bins(table: ColorTable, colors: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The histogram a large palette's merging starts from: 7 bits a channel while
    that leaves ``_BINS_PER_ENTRY`` bins an entry (k = 4096 on the astronaut: 0.13 dB
    more than the exact colours and half the time; on china.jpg 0.04 dB less), else
    none (the exact colours: 6 bits lost 0.16 dB on china.jpg)."""
    histogram = reduced_histogram(table, _LARGE_BITS)
    return histogram if len(histogram[0]) >= _BINS_PER_ENTRY * colors else None


def _small_kmeans(points: np.ndarray, weights: np.ndarray, colors: int, seed: int) -> np.ndarray:
    """One k-means++ start and Lloyd's iterations: the coarse split of large palettes."""
    with _one_thread():
        return kmeans.lloyd(
            points, weights, kmeans.seeds(points, weights, colors, seed), _TOLERANCE
        )[0]


def fit_minibatch(table: ColorTable, colors: int, seed: int = 0) -> np.ndarray:
    """Mini-batch k-means on the weighted distinct colours: memory and time bounded by
    the batch size, for very large images with millions of distinct colours."""
    from sklearn.cluster import MiniBatchKMeans

    if table.colors.shape[1] == 1:
        return fit_exact_grey(table, colors, seed)
    model = MiniBatchKMeans(
        colors, batch_size=_MINIBATCH_SIZE, n_init=1, random_state=seed, max_no_improvement=10
    )
    with _thread_pools().limit(limits=1):
        model.fit(table.positions(), sample_weight=table.counts)
    return model.cluster_centers_


def _per_channel(levels: Callable[[np.ndarray, int], np.ndarray]) -> Fitter:
    """A fitter using ``levels`` per channel: the grid of channel levels, as many per
    channel as fit ``colors`` (KBinsDiscretizer treats each channel as a feature)."""

    def fitter(table: ColorTable, colors: int, seed: int = 0) -> np.ndarray:
        channels = table.colors.shape[1]
        per_channel = max(1, int(np.floor(colors ** (1 / channels) + 1e-9)))
        axes = [
            levels(grey.histogram(table.colors[:, channel], table.counts), per_channel)
            for channel in range(channels)
        ]
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, channels)
        return np.unique(grid, axis=0)

    fitter.__doc__ = levels.__doc__
    return fitter


def fit_exact_grey(table: ColorTable, colors: int, seed: int = 0) -> np.ndarray:
    """The exact minimum-MSE palette of 1-channel data (dynamic programme on the histogram)."""
    if table.colors.shape[1] != 1:
        raise VQIError("the exact palette is defined for 1-channel data only")
    return grey.optimal_levels(grey.histogram(table.colors[:, 0], table.counts), colors)[:, None]


PALETTE_METHODS: dict[str, Fitter] = {
    "kmeans": fit_kmeans,
    "minibatch": fit_minibatch,
    "uniform": _per_channel(grey.uniform_levels),
    "quantile": _per_channel(grey.quantile_levels),
}
DEFAULT_PALETTE_METHOD = "kmeans"


def fit(
    pixels: np.ndarray,
    colors: int,
    *,
    method: str = DEFAULT_PALETTE_METHOD,
    seed: int = 0,
    min_psnr: float | None = None,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """A palette of at most ``colors`` distinct entries for (N, C) uint8 pixels.

    Pixels with at most ``colors`` distinct colours get exactly those colours. With
    ``min_psnr`` the palette is the smallest reaching that PSNR. The pixels may be a
    sample of a larger image; ``assign`` then maps every pixel. ``weights`` (N,), if
    given, lean the k-means fit towards the heavier pixels (see ``fit_kmeans``).
    """
    return _palette_for(color_table(pixels, weights), colors, method, seed, min_psnr)


def _palette_for(
    table: ColorTable, colors: int, method: str, seed: int, min_psnr: float | None
) -> np.ndarray:
    if min_psnr is None:
        return _fit_table(table, colors, method, seed)
    return _smallest_palette(table, colors, min_psnr, method, seed)


def _fit_table(table: ColorTable, colors: int, method: str, seed: int) -> np.ndarray:
    try:
        fitter = PALETTE_METHODS[method]
    except KeyError:
        raise VQIError(
            f"unknown palette method {method!r}; choose one of {', '.join(PALETTE_METHODS)}"
        ) from None
    if len(table.colors) <= colors:
        return table.colors
    if has_alpha(table.colors.shape[1]) and np.all(table.colors[:, -1] == 255):
        # Opaque: the colour channels alone are the problem (a grey one, maybe).
        opaque = replace(table, colors=table.colors[:, :-1])
        colour = _fit_table(opaque, colors, method, seed)
        return np.hstack([colour, np.full_like(colour[:, :1], 255)])
    if has_alpha(table.colors.shape[1]):
        return _fit_seen(table, colors, fitter, seed)
    if is_grey(table.colors):
        # Equal channels (a grey photo saved as RGB) are a 1-channel problem, which has
        # an exact answer, and per-channel grids would waste entries off the diagonal.
        grey_table = ColorTable(table.colors[:, :1], table.counts, table.inverse)
        levels = to_palette(fitter(grey_table, colors, seed))
        return np.repeat(levels, table.colors.shape[1], axis=1)
    return to_palette(fitter(table, colors, seed))


def has_alpha(channels: int) -> bool:
    """Whether pixels of this many channels end in alpha (LA and RGBA)."""
    return channels in (2, 4)


def premultiply(colors: np.ndarray) -> np.ndarray:
    """Float colours scaled by their alpha (the last channel): the image over black."""
    values = colors.astype(np.float64)
    values[:, :-1] *= values[:, -1:] / 255
    return values


def seen(colors: np.ndarray) -> np.ndarray:
    """Coordinates of colours with alpha whose squared distance is half the squared
    error of the image composited over black plus over white, per colour channel
    dp**2 + (dp - da)**2 = 2 (dp - da/2)**2 + da**2 / 2 (dp premultiplied): colour
    differences weigh as much as they show, and all invisible colours meet at 0."""
    values = premultiply(colors)
    alpha = values[:, -1].copy()
    values[:, :-1] -= alpha[:, None] / 2
    values[:, -1] = alpha * _alpha_weight(colors.shape[1])
    return values


def _alpha_weight(channels: int) -> float:
    return np.sqrt(channels - 1) / 2


def _from_seen(values: np.ndarray) -> np.ndarray:
    """``seen`` undone: straight float colours, alpha rounded first (so that colours
    are scaled back by the alpha they will have), (0, ..., 0) when invisible."""
    alpha = np.clip(np.rint(values[:, -1:] / _alpha_weight(values.shape[1])), 0, 255)
    colour = (values[:, :-1] + alpha / 2) * np.divide(
        255, alpha, out=np.zeros_like(alpha), where=alpha > 0
    )
    return np.hstack([colour, alpha])


def _table_points(values: np.ndarray) -> np.ndarray:
    """``seen`` coordinates mapped to the range of uint8 (one uniform affine map, so
    distances keep their order): colour -127.5..255 and alpha 0..221 fit 0..255."""
    return ((values + _TABLE_OFFSET) * _TABLE_SCALE).astype(np.float32)


def _from_table(colors: np.ndarray) -> np.ndarray:
    return colors / _TABLE_SCALE - _TABLE_OFFSET


def _seen_table(colors: np.ndarray, counts: np.ndarray) -> ColorTable:
    """Colours with alpha as a table in ``seen`` coordinates: rounded to uint8 for the
    coarse histogram to bin, and exact for the fit to converge on. Fitting the rounded
    colours merged colours a level apart: GNOME's folder icons at k = 256 came out 1 dB
    below pngquant instead of 2 dB above."""
    points = _table_points(seen(colors))
    return ColorTable(np.rint(points).astype(np.uint8), counts, np.zeros(0, np.intp), points=points)


def _fit_seen(table: ColorTable, colors: int, fitter: Fitter, seed: int) -> np.ndarray:
    """Straight uint8 entries for an image with alpha, fitted as seen. Fully
    transparent pixels, if any, get an entry of their own, (0, ..., 0), and the
    visible colours the rest: otherwise k-means may blend them with faint colours
    into an entry that shows. When the visible colours and that entry fit in
    ``colors``, they are the palette: the image looks exactly as it did. So few
    transparent pixels that their own entry would save less error than any visible
    entry does are fitted with the rest instead."""
    entries, counts = _visible_colors(table)
    if len(entries) <= colors:
        return entries
    if colors >= 2 and np.any(table.colors[:, -1] == 0):
        visible = fitter(_seen_table(entries[1:], counts[1:]), colors - 1, seed)
        if _transparent_entry_pays(entries[1:], counts[1:], _from_table(visible), counts[0]):
            fitted = np.vstack([_table_points(np.zeros((1, entries.shape[1]))), visible])
            means = _exact_means(table, _from_table(fitted))
            means[0] = 0  # the transparent entry stays (0, ..., 0)
            return to_palette(_from_seen(means))
    fitted = _from_table(fitter(_seen_table(entries, counts), colors, seed))
    return to_palette(_from_seen(_exact_means(table, fitted)))


def _transparent_entry_pays(
    colors: np.ndarray, counts: np.ndarray, centres: np.ndarray, transparent: int
) -> bool:
    """Whether an entry for ``transparent`` fully transparent pixels saves more seen
    error than the least useful of the ``centres`` fitted to the visible ``colors``:
    the error its pixels would gain at their second-nearest centre. A few invisible
    pixels (the stray corners of an overlay) are not worth an entry that a gradient's
    band needs; a sprite's background is. Judged on a sample of large tables."""
    from scipy.spatial import cKDTree

    if len(centres) < 2:  # one visible entry: nothing to compare it with
        return True
    step = max(1, len(colors) // _ASSIGN_CHUNK)  # a sample is enough to compare
    distances, nearest = cKDTree(centres).query(seen(colors[::step]), k=2)
    gained = step * counts[::step] * (distances[:, 1] ** 2 - distances[:, 0] ** 2)
    removal = np.bincount(nearest[:, 0], weights=gained, minlength=len(centres))
    missing = transparent * float((centres**2).sum(axis=1).min())
    return missing >= removal.min()


def _visible_colors(table: ColorTable) -> tuple[np.ndarray, np.ndarray]:
    """The distinct colours with alpha > 0 and their counts, after (0, ..., 0) for all
    those without, if any: the colours as a viewer can tell them apart."""
    invisible = table.colors[:, -1] == 0
    entries, counts = table.colors[~invisible], table.counts[~invisible]
    if invisible.any():
        entries = np.vstack([np.zeros_like(table.colors[:1]), entries])
        counts = np.concatenate([[table.counts[invisible].sum()], counts])
    return entries, counts


def _exact_means(table: ColorTable, centres: np.ndarray) -> np.ndarray:
    """One last Lloyd step on the unrounded ``seen`` colours: each centre moves to the
    weighted mean of the colours nearest it, undoing the rounding of fitters that work
    on the table's uint8 colours (the grids). Centres no colour is nearest to keep
    their place."""
    points = seen(table.colors)
    nearest = _nearest(points, centres, lambda values: values)
    weights = np.bincount(nearest, weights=table.counts, minlength=len(centres))
    sums = [
        np.bincount(nearest, weights=table.counts * points[:, channel], minlength=len(centres))
        for channel in range(points.shape[1])
    ]
    means = centres.copy()
    used = weights > 0
    means[used] = np.stack(sums, axis=1)[used] / weights[used, None]
    return means


def _assignment_space(palette: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Where nearest entries are searched: ``seen`` coordinates for images with alpha
    (the fit's space). Entries look alike only when invisible; if a palette has several,
    the straight colour, scaled to a tie-breaker, is added so that each invisible colour
    still maps to itself (the extra dimensions slow the k-d tree, so only then)."""
    if not has_alpha(palette.shape[1]):
        return lambda colors: colors.astype(np.float64)
    if np.count_nonzero(palette[:, -1] == 0) <= 1:
        return seen
    return lambda colors: np.hstack([seen(colors), colors * _TIE_BREAK])


def index_dtype(colors: int) -> type[np.unsignedinteger]:
    """The narrowest unsigned dtype holding an index into ``colors`` entries."""
    return np.uint8 if colors <= 256 else np.uint16


def is_grey(colors: np.ndarray) -> bool:
    """Whether several channels hold equal values in every colour."""
    return colors.shape[1] > 1 and bool(np.all(colors == colors[:, :1]))


def assign(pixels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Index of the nearest palette entry (squared Euclidean) for each (N, C) pixel;
    with alpha, nearest as seen (composited over black and white), as fitted.

    An exact k-d tree search (faster than the distance matrix for photo palettes in
    3-4 channels), done in chunks so memory stays bounded for any image size.
    """
    return _nearest(pixels, palette, _assignment_space(palette))


def _nearest(
    points: np.ndarray, centres: np.ndarray, space: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """Index of the nearest centre for each point, both mapped by ``space`` first."""
    from scipy.spatial import cKDTree

    tree = cKDTree(space(centres))
    result = np.empty(len(points), dtype=index_dtype(len(centres)))
    for start in range(0, len(points), _ASSIGN_CHUNK):
        _, nearest = tree.query(space(points[start : start + _ASSIGN_CHUNK]))
        result[start : start + _ASSIGN_CHUNK] = nearest
    return result


def psnr(table: ColorTable, palette: np.ndarray, indices: np.ndarray) -> float:
    """PSNR in dB of the pixels a colour table counts, each distinct colour mapped to
    ``palette[indices]``; infinite when exact. With alpha the error is the one seen
    (composited over black and white), so invisible colours cost nothing."""
    error = (_visible(table.colors) - _visible(palette[indices])) ** 2
    mse = float(error.sum(axis=1) @ table.counts) / (table.counts.sum() * table.colors.shape[1])
    return _decibels(mse)


def _visible(colors: np.ndarray) -> np.ndarray:
    """Colours as compared for quality: as ``seen`` when they have alpha."""
    return seen(colors) if has_alpha(colors.shape[1]) else colors.astype(np.float64)


def image_psnr(original: np.ndarray, decoded: np.ndarray) -> float:
    """PSNR in dB between two uint8 images of one shape; infinite when equal. Rows are
    compared a band at a time, so the float copies stay small for any image size."""
    rows = max(1, _ASSIGN_CHUNK // max(1, original[0].size))
    squared = 0.0
    for start in range(0, len(original), rows):
        error = original[start : start + rows].astype(np.float64) - decoded[start : start + rows]
        squared += float(np.vdot(error, error))
    return _decibels(squared / original.size)


def _decibels(mse: float) -> float:
    return np.inf if mse == 0 else 10 * np.log10(255**2 / mse)


def _smallest_palette(
    table: ColorTable, max_colors: int, min_psnr: float, method: str, seed: int
) -> np.ndarray:
    """The palette of the fewest colours (at most ``max_colors``) reaching ``min_psnr``,
    like pngquant's --quality; ``max_colors`` colours if none does.

    A binary search over the palette size, as quality rises with it (strictly for the
    exact grey optimum, up to k-means' local optima otherwise). The largest palette is
    fitted first: when it misses the target no smaller one is tried. The probes' cost
    falls with their size, so a search costs about two fits of the largest palette.
    """
    low, high = 1, min(max_colors, len(table.colors))
    best = _fit_table(table, high, method, seed)
    if psnr(table, best, assign(table.colors, best)) < min_psnr:
        return best
    while low < high:
        middle = (low + high) // 2
        palette = _fit_table(table, middle, method, seed)
        if psnr(table, palette, assign(table.colors, palette)) >= min_psnr:
            high, best = middle, palette
        else:
            low = middle + 1
    return best


def quantize(
    pixels: np.ndarray,
    colors: int,
    *,
    method: str = DEFAULT_PALETTE_METHOD,
    seed: int = 0,
    min_psnr: float | None = None,
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Palette and one index per pixel for (N, C) uint8 pixels held in memory.

    With ``min_psnr`` the palette is the smallest reaching that PSNR, ``colors`` at
    most. Assigns each distinct colour once and spreads the result to the pixels.
    ``weights`` are ``fit``'s.
    """
    table = color_table(pixels, weights)
    palette = _palette_for(table, colors, method, seed, min_psnr)
    if palette is table.colors:
        return palette, table.inverse.astype(index_dtype(len(palette)))
    return palette, assign(table.colors, palette)[table.inverse]
