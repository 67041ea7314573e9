"""Weighted k-means for palettes: greedy k-means++ seeds and Lloyd's iterations, in numpy.

The nearest centre of a chunk of points is one float32 matrix product against the
centres (``NearestEntry``), which for the few thousand centres of a palette and three
or four channels is faster than a tree. Written here rather than taken from
scikit-learn, whose import alone (about 0.6 s: it loads much of SciPy) took as long as
fitting a photo's palette.
"""

from __future__ import annotations

import numpy as np

BLOCK = 1 << 18
"""Distances computed at once: a block of points against every centre stays in cache
(a chunk of points 16 MiB of distances was twice as slow at k = 256)."""
MAX_ITERATIONS = 300


class NearestEntry:
    """Index and squared distance of the nearest entry of (N, D) points: the squared
    distance less the point's own norm, |e|^2 - 2 p.e, is one matrix product of the
    point with a 1 appended and a table of -2 e and |e|^2 (a third faster than adding
    the norms after the product)."""

    def __init__(self, entries: np.ndarray) -> None:
        self.entries = np.asarray(entries, np.float32)
        norms = np.einsum("ij,ij->i", self.entries, self.entries)
        self.table = np.vstack([-2 * self.entries.T, norms[None]])

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """The nearest entry's index of each point (one chunk: any size, memory N x k)."""
        augmented = np.ones((len(points), len(self.table)), np.float32)
        augmented[:, :-1] = points
        return (augmented @ self.table).argmin(axis=1)

    def labels(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(nearest index, squared distance) of each point, a block at a time."""
        labels = np.empty(len(points), np.intp)
        for start, stop in self._blocks(len(points)):
            labels[start:stop] = self(points[start:stop])
        return labels, _squares(points - self.entries[labels]).astype(np.float64)

    def _blocks(self, count: int) -> list[tuple[int, int]]:
        rows = max(64, BLOCK // len(self.entries))
        return [(start, min(start + rows, count)) for start in range(0, count, rows)]


def seeds(points: np.ndarray, weights: np.ndarray, colors: int, seed: int) -> np.ndarray:
    """``colors`` greedy k-means++ centres of weighted (N, D) points (Arthur and
    Vassilvitskii): each next centre is the best, by the error it leaves, of
    2 + log(k) points drawn in proportion to weight times squared distance to the
    centres so far. ``colors`` must not exceed the points with weight."""
    rng = np.random.default_rng(seed)
    values = np.asarray(points, np.float64)
    norms = _squares(values)
    trials = 2 + int(np.log(colors))
    chosen = [int(rng.choice(len(values), p=weights / weights.sum()))]
    closest = _squares(values - values[chosen[0]])
    for _ in range(1, colors):
        cumulative = np.cumsum(weights * closest)
        draws = np.searchsorted(cumulative, rng.uniform(size=trials) * cumulative[-1])
        candidates = np.minimum(draws, len(values) - 1)
        # |x - c|^2 = |x|^2 + |c|^2 - 2 x.c: one (N, D) x (D, trials) product
        distances = norms[:, None] + norms[candidates] - 2 * (values @ values[candidates].T)
        np.minimum(distances, closest[:, None], out=distances)
        best = int(np.argmin(weights @ distances))
        chosen.append(int(candidates[best]))
        closest = np.maximum(distances[:, best], 0)
    return values[chosen]


def _squares(differences: np.ndarray) -> np.ndarray:
    return np.einsum("...j,...j->...", differences, differences)


def lloyd(
    points: np.ndarray, weights: np.ndarray, centres: np.ndarray, tolerance: float
) -> tuple[np.ndarray, float]:
    """Weighted Lloyd iterations from ``centres`` until an iteration lowers the error by
    less than ``tolerance`` of it: (centres, the error of the last assignment). A centre
    left without points moves to the point of largest error, as no entry should go
    unused. (Hamerly's bounds, which skip the points that cannot change cluster, cost
    more than they saved here: a point's distances to all centres are one short row of
    a matrix product.)"""
    points = np.asarray(points, np.float32)
    previous = np.inf
    for _ in range(MAX_ITERATIONS):
        labels, squares = NearestEntry(centres).labels(points)
        error = float(squares @ weights)
        moved = cluster_means(points, weights, labels, centres, squares)
        if error >= previous * (1 - tolerance):
            return moved, error
        centres, previous = moved, error
    return centres, previous


def cluster_means(
    points: np.ndarray,
    weights: np.ndarray,
    labels: np.ndarray,
    centres: np.ndarray,
    squares: np.ndarray,
) -> np.ndarray:
    """Each cluster's weighted mean; empty clusters take the points of largest error."""
    count = len(centres)
    mass = np.bincount(labels, weights=weights, minlength=count)
    sums = np.stack(
        [
            np.bincount(labels, weights=weights * points[:, c], minlength=count)
            for c in range(points.shape[1])
        ],
        axis=1,
    )
    means = np.array(centres, np.float64)
    occupied = mass > 0
    means[occupied] = sums[occupied] / mass[occupied, None]
    empty = np.flatnonzero(~occupied)
    if len(empty):
        worst = np.argsort(squares * weights)[::-1][: len(empty)]
        means[empty[: len(worst)]] = points[worst]
    return means
