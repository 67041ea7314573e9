"""Palettes for 1-channel data from its 256-bin histogram.

``optimal_levels`` is the exact minimum-MSE palette: with nearest-level assignment,
every palette splits the sorted values into contiguous runs, so a dynamic programme
over run boundaries finds the global optimum that k-means only approaches.
``uniform_levels`` and ``quantile_levels`` are scikit-learn's KBinsDiscretizer bin
centres (strategies ``uniform`` and ``quantile``), computed from the histogram.
"""

from __future__ import annotations

import numpy as np


def histogram(values: np.ndarray, counts: np.ndarray | None = None) -> np.ndarray:
    """Pixel count per level 0..255 of uint8 values (optionally already counted)."""
    return np.bincount(values.ravel(), weights=counts, minlength=256).astype(np.float64)


def _run_costs(levels: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cost and best integer centre of every run levels[i..j] (i <= j), as (n, n) arrays.

    For a fixed run the squared error is a parabola in the centre, so the best uint8
    centre is the run's weighted mean rounded to the nearest integer.
    """
    zero = np.zeros(1)
    w = np.concatenate([zero, np.cumsum(weights)])
    s = np.concatenate([zero, np.cumsum(weights * levels)])
    q = np.concatenate([zero, np.cumsum(weights * levels**2)])
    first, last = np.triu_indices(len(levels))
    run_w = w[last + 1] - w[first]
    run_s = s[last + 1] - s[first]
    run_q = q[last + 1] - q[first]
    centre = np.rint(run_s / run_w)
    cost = np.full((len(levels), len(levels)), np.inf)
    centres = np.zeros_like(cost)
    cost[first, last] = run_q - 2 * centre * run_s + centre**2 * run_w
    centres[first, last] = centre
    return cost, centres


def optimal_levels(hist: np.ndarray, colors: int) -> np.ndarray:
    """The exact minimum-MSE palette of at most ``colors`` uint8 levels for a histogram.

    O(colors * n^2) for n occupied levels (n <= 256); levels come back sorted.
    """
    levels = np.flatnonzero(hist).astype(np.float64)
    if len(levels) <= colors:
        return levels.astype(np.uint8)
    n = len(levels)
    cost, centres = _run_costs(levels, hist[levels.astype(np.intp)])
    # best[j]: least error covering levels[0..j] with the runs so far; start[m, j]: where
    # the last of m+1 runs begins in that optimum.
    best = cost[0].copy()
    start = np.zeros((colors, n), dtype=np.intp)
    for runs in range(1, colors):
        # candidate[i, j]: runs-many runs over levels[0..i-1], then one run levels[i..j]
        candidate = np.full((n, n), np.inf)
        candidate[1:] = best[:-1, None] + cost[1:]
        start[runs] = candidate.argmin(axis=0)
        best = candidate[start[runs], np.arange(n)]
    palette = np.empty(colors)
    last = n - 1
    for runs in range(colors - 1, -1, -1):
        first = start[runs, last]
        palette[runs] = centres[first, last]
        last = first - 1
    return palette.astype(np.uint8)


def _bin_centres(edges: np.ndarray) -> np.ndarray:
    """Rounded centres of the bins between edges, dropping empty-width bins as
    KBinsDiscretizer does."""
    edges = edges[np.ediff1d(edges, to_begin=np.inf) > 1e-8]
    if len(edges) == 1:  # one occupied level: one bin
        return edges.astype(np.uint8)
    return np.unique(np.rint((edges[1:] + edges[:-1]) / 2).astype(np.uint8))


def uniform_levels(hist: np.ndarray, colors: int) -> np.ndarray:
    """Centres of ``colors`` equal-width bins spanning the occupied range."""
    levels = np.flatnonzero(hist)
    return _bin_centres(np.linspace(levels[0], levels[-1], colors + 1))


def weighted_percentiles(hist: np.ndarray, percents: np.ndarray) -> np.ndarray:
    """Percentiles of the pixels a histogram counts, without expanding it.

    Numpy's ``averaged_inverted_cdf`` method, KBinsDiscretizer's default.
    """
    levels = np.flatnonzero(hist)
    ends = np.cumsum(hist[levels])  # sorted position just past each level's pixels
    total = ends[-1]
    position = percents / 100 * total

    def sorted_value(rank: np.ndarray) -> np.ndarray:
        rank = np.clip(rank, 0, total - 1)
        return levels[np.searchsorted(ends, rank, side="right")]

    return (sorted_value(np.ceil(position) - 1) + sorted_value(np.floor(position))) / 2


def quantile_levels(hist: np.ndarray, colors: int) -> np.ndarray:
    """Centres of ``colors`` equal-population bins (KBinsDiscretizer's quantile edges)."""
    return _bin_centres(weighted_percentiles(hist, np.linspace(0, 100, colors + 1)))
