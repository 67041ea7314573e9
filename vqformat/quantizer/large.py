"""k-means for large palettes (thousands of colours), in time that grows as N log N.

Lloyd's iterations cost N·k distance computations, which is what makes scikit-learn's
k-means impractical at k = 4096 or 65536 on a photo's 10^5 distinct colours, and
k-means++ seeding costs as much again. Here the seeds come from the other end:
pairwise-nearest-neighbour merging (Equitz's PNN, Ward's criterion), which starts from
every distinct colour as a cluster of its own and merges, round by round, the pairs of
clusters that are each other's cheapest merge among their nearest neighbours (a k-d
tree query), until k clusters remain. Lloyd iterations with k-d tree assignment then
polish the clusters' means. A large palette keeps most colours of an image exact,
which is what merging only the cheapest pairs gives: on scikit-image's astronaut and
scikit-learn's china.jpg it gives 0.12 and 0.04 dB more than k-means++ seeds per
cluster of a coarse k-means at k = 4096, 0.28 and 0.37 dB more at 65536, in less time
(tools/bench.py --only large). With many colours an entry (k = 1024 on a photo)
merging is the weaker and slower of the two, and the k-means++ seeds stay.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from . import kmeans
from .progress import report

if TYPE_CHECKING:
    from scipy.spatial import cKDTree

NEIGHBOURS = 6
"""Nearest clusters (by distance) among which each cluster's cheapest merge is sought:
Ward's cost also weighs the clusters' sizes, so the cheapest is not always the nearest."""
MERGE_FRACTION = 0.25
"""A round merges at most this fraction of the merges still needed, the cheapest first:
merging half gave 0.3 dB less at k = 65536 on the astronaut; early rounds are bounded by
the mutual pairs anyway, so this shapes only the last rounds."""
MERGE_RATIO = 32
"""Seeds come from merging pairs when there are at most this many distinct colours a
palette entry: at k = 4096 on the astronaut (28 colours an entry) merging gave as much
as k-means++ per coarse cluster from the exact colours (0.12 dB more from a histogram),
at k = 1024 (110 an entry) 1.1 dB less. Merging is cheapest when few merges are
needed, k-means++ when few seeds are."""
COARSE_CLUSTERS = 64
"""Clusters of the first, small k-means whose members are seeded separately."""
ALLOCATION_EXPONENT = 0.6
"""A cluster with error E gets seeds in proportion to E^0.6: for a fine quantizer in three
dimensions the error of n_i colours with k_i entries falls as k_i^(-2/3), and equalising
the marginal gains gives k_i proportional to E_i^(3/5)."""
MAX_ITERATIONS = 300
TOLERANCE = 2e-3
"""Stop Lloyd when an iteration lowers the error by less than this fraction: at k = 4096
on the astronaut and china.jpg, 1e-3 took a fifth longer for 0.003-0.005 dB, and 1e-4
twice the iterations for 0.01 dB."""
_WORKERS = -1  # k-d tree queries on every core


def fit_large_kmeans(
    points: np.ndarray,
    weights: np.ndarray,
    colors: int,
    seed: int,
    small_fit: Callable[[np.ndarray, np.ndarray, int, int], np.ndarray],
    histogram: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """(colors, C) float centres for weighted (n, C) points, n > colors.

    Seeds by merging pairs when there are at most ``MERGE_RATIO`` points an entry
    (starting from the bins of ``histogram``, (means, weights) of the points, when
    given: fewer merges), else by k-means++ inside each cluster of a coarse k-means,
    ``small_fit(points, weights, k, seed)`` (the ordinary k-means; it returns float
    centres); then Lloyd iterations on the points.
    """
    if len(points) <= MERGE_RATIO * colors:
        centres = merge_pairs(*(histogram or (points, weights)), colors)
    else:
        coarse = small_fit(points, weights, min(COARSE_CLUSTERS, colors), seed)
        labels = nearest(coarse, points)
        centres = _seeds_per_cluster(points, weights, labels, coarse, colors, seed)
    return lloyd(points, weights, centres)


def merge_pairs(points: np.ndarray, weights: np.ndarray, colors: int) -> np.ndarray:
    """The means of ``colors`` clusters, merged from the points by Ward's criterion.

    Clusters keep their index for life (a merge keeps the first, ends the second), so
    that a round can re-query the k-d tree only for lists that may be out of date: of
    the merged clusters, of those that had one as a neighbour and of those a merged one
    now has as a neighbour. A merged cluster can still move near a list unseen, which
    makes pairs that should be mutual look one-sided; when a round finds fewer pairs
    than it may merge, the next re-queries every list. A cheapest merge is recomputed
    only for the lists re-queried, as no other list has changed.
    """
    from scipy.spatial import cKDTree  # imported when needed: every command imports this

    means, masses = points.astype(np.float64), weights.astype(np.float64)
    neighbours = np.empty((len(means), min(NEIGHBOURS + 1, len(means))), dtype=np.intp)
    live = np.arange(len(means))
    stale = np.ones(len(means), dtype=bool)
    first = live[:0]
    partners, costs = np.empty(len(means), np.intp), np.empty(len(means))
    while len(live) > colors:
        tree = cKDTree(means[live])
        refreshed = live[stale[live]]
        _find_neighbours(tree, means, live, refreshed, neighbours)
        near_merged = np.unique(neighbours[first])
        near_merged = near_merged[~stale[near_merged]]
        _find_neighbours(tree, means, live, near_merged, neighbours)
        queried = np.union1d(refreshed, near_merged)
        partners[queried], costs[queried] = _cheapest_merges(
            means, masses, queried, neighbours[queried]
        )
        partner, least = partners[live], costs[live]
        first, limited = _mutual(live, partner, least, len(live) - colors)
        second = partner[np.searchsorted(live, first)]
        total = masses[first] + masses[second]
        means[first] = (
            means[first] * masses[first, None] + means[second] * masses[second, None]
        ) / total[:, None]
        masses[first] = total
        if limited:
            changed = np.zeros(len(means), dtype=bool)
            changed[first] = changed[second] = True
            stale[live] = changed[neighbours[live]].any(axis=1)
        else:
            stale[:] = True
        live = live[~np.isin(live, second, assume_unique=True)]
        report("fitting the palette", 0.8 * (len(means) - len(live)) / (len(means) - colors))
    return means[live]


def _find_neighbours(
    tree: cKDTree, means: np.ndarray, live: np.ndarray, queried: np.ndarray, neighbours: np.ndarray
) -> None:
    """Fill the rows ``queried`` of ``neighbours`` with the nearest live clusters (the
    tree holds the live means); columns beyond the live count name the row itself."""
    if len(queried):
        count = min(neighbours.shape[1], len(live))
        found = tree.query(means[queried], k=count, workers=_WORKERS)[1]
        neighbours[queried, :count] = live[found.reshape(len(queried), count)]
        neighbours[queried, count:] = queried[:, None]


def _cheapest_merges(
    means: np.ndarray, masses: np.ndarray, live: np.ndarray, neighbours: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each live cluster's cheapest merge among its neighbours, by Ward's criterion (the
    rise in squared error, m1 m2 / (m1 + m2) |d|^2): (partner, cost)."""
    difference = means[neighbours] - means[live, None]
    cost = np.einsum("ijk,ijk->ij", difference, difference)
    cost *= masses[live, None] * masses[neighbours] / (masses[live, None] + masses[neighbours])
    cost[neighbours == live[:, None]] = np.inf  # not itself
    rows = np.arange(len(live))
    best = np.argmin(cost, axis=1)
    return neighbours[rows, best], cost[rows, best]


def _mutual(
    live: np.ndarray, partner: np.ndarray, least: np.ndarray, needed: int
) -> tuple[np.ndarray, bool]:
    """The first clusters of pairs that are each other's cheapest merge, cheapest first,
    at most ``MERGE_FRACTION`` of ``needed``, and whether that limit cut them short.
    Such pairs exist in all but degenerate cases (the cheapest merge overall is one,
    unless neighbour lists are asymmetric); else the cheapest merge alone."""
    mutual = (partner[np.searchsorted(live, partner)] == live) & (live < partner)
    pairs = np.flatnonzero(mutual)
    if len(pairs) == 0:
        pairs = np.array([np.argmin(least)])
    limit = max(1, int(np.ceil(needed * MERGE_FRACTION)))
    if len(pairs) < limit:
        return live[pairs], False
    return live[pairs[np.argsort(least[pairs], kind="stable")[:limit]]], True


def nearest(centres: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Index of the nearest centre of each point (exact k-d tree search)."""
    from scipy.spatial import cKDTree

    return cKDTree(centres).query(points, workers=_WORKERS)[1]


def lloyd(points: np.ndarray, weights: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Weighted Lloyd iterations with k-d tree assignment until the error settles."""
    previous = np.inf
    for _ in range(MAX_ITERATIONS):
        labels = nearest(centres, points)
        difference = points - centres[labels]
        squares = np.einsum("ij,ij->i", difference, difference)
        error = float(squares @ weights)
        centres = kmeans.cluster_means(points, weights, labels, centres, squares)
        if error >= previous * (1 - TOLERANCE):
            break
        if np.isfinite(previous):
            report("fitting the palette", 0.8 + 0.2 * _settled(1 - error / previous))
        previous = error
    return centres


def _settled(improvement: float) -> float:
    """How near Lloyd is to stopping, 0..1: the relative improvement per iteration
    falls roughly geometrically towards ``TOLERANCE``."""
    return float(np.clip(np.log(max(improvement, TOLERANCE)) / np.log(TOLERANCE), 0, 1))


def _seeds_per_cluster(
    points: np.ndarray,
    weights: np.ndarray,
    labels: np.ndarray,
    coarse: np.ndarray,
    colors: int,
    seed: int,
) -> np.ndarray:
    """``colors`` seeds: k-means++ inside each coarse cluster, as many as its share."""
    members = np.bincount(labels, minlength=len(coarse))
    difference = points - coarse[labels]
    errors = np.bincount(
        labels,
        weights=weights * np.einsum("ij,ij->i", difference, difference),
        minlength=len(coarse),
    )
    shares = allocate(errors**ALLOCATION_EXPONENT, members, colors)
    order = np.argsort(labels, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(members)])
    seeds = []
    for cluster in np.flatnonzero(shares):
        report("fitting the palette", 0.8 * bounds[cluster] / len(points))
        chosen = order[bounds[cluster] : bounds[cluster + 1]]
        if shares[cluster] == len(chosen):
            seeds.append(points[chosen])
            continue
        seeds.append(
            kmeans.seeds(points[chosen], weights[chosen], int(shares[cluster]), seed + int(cluster))
        )
    return np.concatenate(seeds)


def allocate(demand: np.ndarray, capacity: np.ndarray, total: int) -> np.ndarray:
    """Whole shares of ``total`` in proportion to ``demand``, each at most its
    ``capacity``; ``total`` must not exceed ``capacity.sum()``.

    Largest remainders; capped clusters give their excess to the others, repeated until
    nothing is left (at most once per cluster).
    """
    shares = np.zeros(len(demand), dtype=np.int64)
    open_ = capacity > 0
    remaining = total
    while remaining > 0:
        weight = np.where(open_, demand, 0.0)
        if weight.sum() <= 0:
            weight = open_.astype(np.float64)
        ideal = remaining * weight / weight.sum()
        grant = np.minimum(np.floor(ideal).astype(np.int64), capacity - shares)
        leftover = remaining - int(grant.sum())
        room = np.flatnonzero(capacity - shares - grant > 0)
        by_remainder = room[np.argsort(np.floor(ideal[room]) - ideal[room], kind="stable")]
        grant[by_remainder[:leftover]] += 1
        shares += grant
        remaining -= int(grant.sum())
        open_ = shares < capacity
    return shares
