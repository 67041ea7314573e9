"""Weighted k-means in numpy: seeds, Lloyd's iterations and the nearest-entry search,
checked against brute force and against scikit-learn's KMeans on the same problem."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.cluster import KMeans

from vqformat.quantizer import kmeans


def _clouds(seed: int, count: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    """Weighted 3-D points in a few Gaussian clouds, like a photo's colours."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 255, (12, 3))
    points = centres[rng.integers(0, 12, count)] + rng.normal(0, 14, (count, 3))
    return np.clip(points, 0, 255).astype(np.float32), rng.integers(1, 40, count).astype(float)


def _error(points: np.ndarray, weights: np.ndarray, centres: np.ndarray) -> float:
    squares = ((points[:, None, :].astype(float) - centres[None]) ** 2).sum(axis=2)
    return float(squares.min(axis=1) @ weights)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 40), st.integers(1, 4))
def test_nearest_entry_is_the_brute_force_nearest(seed, count, dims):
    rng = np.random.default_rng(seed)
    entries = rng.integers(0, 256, (count, dims)).astype(np.float32)
    points = rng.integers(0, 256, (500, dims)).astype(np.float32)
    labels, squares = kmeans.NearestEntry(entries).labels(points)
    brute = ((points[:, None, :] - entries[None]) ** 2).sum(axis=2)
    # float32 products: a near-tie may pick the other entry, never a farther one by more
    assert np.allclose(brute[np.arange(500), labels], brute.min(axis=1), atol=0.5)
    assert np.allclose(squares, brute[np.arange(500), labels], atol=0.5)


def test_seeds_are_distinct_weighted_points_and_follow_the_seed():
    points, weights = _clouds(1)
    weights[::2] = 0  # never drawn
    first = kmeans.seeds(points, weights, 64, seed=5)
    assert first.shape == (64, 3) and len(np.unique(first, axis=0)) == 64
    drawable = {tuple(p) for p in points[weights > 0].astype(np.float64)}
    assert all(tuple(centre) in drawable for centre in first)
    assert np.array_equal(first, kmeans.seeds(points, weights, 64, seed=5))
    assert not np.array_equal(first, kmeans.seeds(points, weights, 64, seed=6))


@pytest.mark.parametrize("colors", [4, 16, 64])
def test_lloyd_reaches_scikit_learns_error_from_the_same_start(colors):
    points, weights = _clouds(colors)
    start = kmeans.seeds(points, weights, colors, seed=0)
    ours, error = kmeans.lloyd(points, weights, start, 3e-4)
    reference = KMeans(colors, init=start, n_init=1).fit(points, sample_weight=weights)
    assert _error(points, weights, ours) <= 1.003 * reference.inertia_
    # the error reported is of the last assignment, which the final means only lower
    assert _error(points, weights, ours) <= error * (1 + 1e-6) < _error(points, weights, start)


def test_lloyd_ends_at_the_weighted_means_and_fills_empty_clusters():
    points, weights = _clouds(7, 800)
    start = kmeans.seeds(points, weights, 8, seed=0)
    start[1] = start[0]  # a twin: one of the pair starts without points
    centres, _ = kmeans.lloyd(points, weights, start, 1e-9)
    labels, _ = kmeans.NearestEntry(centres).labels(points)
    assert len(np.unique(labels)) == 8
    for cluster in range(8):
        members = labels == cluster
        mean = np.average(points[members], axis=0, weights=weights[members])
        assert np.allclose(centres[cluster], mean, atol=1e-3)
