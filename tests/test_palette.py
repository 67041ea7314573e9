"""Palette fitting and assignment: exact grey optimum, method contracts, true nearest."""

import itertools
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.preprocessing import KBinsDiscretizer

import vqformat
from vqformat.errors import VQIError
from vqformat.quantizer import grey
from vqformat.quantizer import palette as palette_fitting

METHOD_NAMES = sorted(palette_fitting.PALETTE_METHODS)


def squared_error(values: np.ndarray, weights: np.ndarray, levels: np.ndarray) -> float:
    distances = (values[:, None].astype(np.int64) - levels[None, :].astype(np.int64)) ** 2
    return float((distances.min(axis=1) * weights).sum())


@st.composite
def small_histograms(draw):
    """A histogram over a narrow value range (so every palette can be enumerated)."""
    low = draw(st.integers(0, 240))
    span = draw(st.integers(1, 12))
    counts = draw(st.lists(st.integers(0, 50), min_size=span, max_size=span))
    if not any(counts):
        counts[0] = 1
    hist = np.zeros(256)
    hist[low : low + span] = counts
    return hist, draw(st.integers(1, 4))


@settings(max_examples=120, deadline=None)
@given(small_histograms())
def test_grey_optimum_matches_brute_force(case):
    hist, colors = case
    values = np.flatnonzero(hist)
    weights = hist[values]
    levels = grey.optimal_levels(hist, colors)
    assert len(levels) == min(colors, len(values))
    assert len(np.unique(levels)) == len(levels)
    candidates = range(values[0], values[-1] + 1)
    best = min(
        squared_error(values, weights, np.array(palette))
        for palette in itertools.combinations(candidates, min(colors, len(values)))
    )
    assert squared_error(values, weights, levels) == best


def test_grey_optimum_is_no_worse_than_kmeans():
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(1)
    column = np.clip(rng.normal(100, 40, 20000), 0, 255).astype(np.uint8)
    hist = grey.histogram(column)
    values = np.flatnonzero(hist)
    exact = squared_error(values, hist[values], grey.optimal_levels(hist, 8))
    for seed in range(3):
        model = KMeans(8, n_init=1, random_state=seed).fit(column[:, None].astype(np.float64))
        levels = np.unique(np.rint(model.cluster_centers_[:, 0]).astype(np.uint8))
        assert exact <= squared_error(values, hist[values], levels)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 255), min_size=1, max_size=400),
    st.integers(2, 9),
    st.sampled_from(["uniform", "quantile"]),
)
def test_bin_strategies_are_kbins_discretizer_centres(values, colors, strategy):
    column = np.array(values, dtype=np.uint8)
    hist = grey.histogram(column)
    ours = {"uniform": grey.uniform_levels, "quantile": grey.quantile_levels}[strategy](
        hist, colors
    )
    if len(np.unique(column)) == 1:
        assert ours.tolist() == [column[0]]
        return
    kbins = KBinsDiscretizer(n_bins=colors, encode="ordinal", strategy=strategy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bins too narrow to keep: dropped, as in ours
        kbins.fit(column[:, None].astype(np.float64))
    edges = kbins.bin_edges_[0]
    expected = np.unique(np.rint((edges[1:] + edges[:-1]) / 2).astype(np.uint8))
    assert ours.tolist() == expected.tolist()


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(0, 255), min_size=1, max_size=300), st.integers(0, 100))
def test_weighted_percentile_matches_numpy(values, percent):
    column = np.array(values)
    got = grey.weighted_percentiles(grey.histogram(column.astype(np.uint8)), np.array([percent]))
    assert got[0] == np.percentile(column, percent, method="averaged_inverted_cdf")


@st.composite
def pixel_sets(draw, max_pixels=300, channel_counts=(1, 2, 3, 4)):
    channels = draw(st.sampled_from(channel_counts))
    count = draw(st.integers(1, max_pixels))
    distinct = draw(st.integers(1, 40))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    colors = rng.integers(0, 256, size=(distinct, channels), dtype=np.uint8)
    return colors[rng.integers(0, distinct, size=count)]


@settings(max_examples=40, deadline=None)
@given(pixel_sets(), st.integers(1, 48), st.sampled_from(METHOD_NAMES))
def test_every_method_returns_at_most_k_distinct_entries(pixels, colors, method):
    palette = palette_fitting.fit(pixels, colors, method=method)
    assert palette.dtype == np.uint8
    assert palette.ndim == 2 and palette.shape[1] == pixels.shape[1]
    assert 1 <= len(palette) <= colors
    assert len(np.unique(palette, axis=0)) == len(palette)
    distinct = np.unique(pixels, axis=0)
    if len(distinct) <= colors:  # few colours come back exactly
        assert sorted(map(tuple, palette.tolist())) == sorted(map(tuple, distinct.tolist()))
    got_palette, indices = palette_fitting.quantize(pixels, colors, method=method)
    assert np.array_equal(got_palette, palette)
    assert indices.shape == (len(pixels),)
    assert int(indices.max()) < len(palette)


@settings(max_examples=60, deadline=None)
@given(
    pixel_sets(max_pixels=500, channel_counts=(1, 3)),
    st.integers(1, 300),
    st.integers(0, 2**32 - 1),
)
def test_assignment_is_truly_nearest(pixels, colors, seed):
    """Without alpha nearest is by the stored channels (with alpha: test_alpha)."""
    rng = np.random.default_rng(seed)
    palette = np.unique(
        rng.integers(0, 256, size=(colors, pixels.shape[1]), dtype=np.uint8), axis=0
    )
    indices = palette_fitting.assign(pixels, palette)
    distances = ((pixels[:, None, :].astype(np.int64) - palette[None].astype(np.int64)) ** 2).sum(
        axis=2
    )
    assert np.array_equal(distances[np.arange(len(pixels)), indices], distances.min(axis=1))


def synthetic_photo(size: int = 96) -> np.ndarray:
    """Smooth colour gradients with noise: many distinct colours, photo-like statistics."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:size, 0:size] / size
    image = np.stack([255 * x, 255 * y, 128 + 100 * np.sin(6 * x * y)], axis=-1)
    return np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)


def psnr(original: np.ndarray, palette: np.ndarray, indices: np.ndarray) -> float:
    flat = original.reshape(-1, original.shape[-1]).astype(np.float64)
    error = np.mean((flat - palette[indices.ravel()]) ** 2)
    return 10 * np.log10(255**2 / error)


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_encoding_is_deterministic(method):
    image = synthetic_photo(48)
    first = vqformat.encode(image, 16, method=method, seed=3)
    assert vqformat.encode(image, 16, method=method, seed=3) == first


def test_kmeans_quality_on_a_synthetic_photo():
    from sklearn.cluster import KMeans

    image = synthetic_photo()
    pixels = image.reshape(-1, 3)
    palette, indices = palette_fitting.quantize(pixels, 32)
    reference = KMeans(32, n_init=1, random_state=0).fit(pixels.astype(np.float32))
    ref_palette = np.clip(np.rint(reference.cluster_centers_), 0, 255).astype(np.uint8)
    ref_indices = palette_fitting.assign(pixels, ref_palette)
    ours = psnr(image, palette, indices)
    assert ours >= psnr(image, ref_palette, ref_indices) - 0.05
    for method in ("uniform", "quantile", "minibatch"):
        other = palette_fitting.quantize(pixels, 32, method=method)
        assert ours > psnr(image, *other)


def test_grey_images_get_the_exact_optimum_through_the_codec():
    rng = np.random.default_rng(5)
    image = np.clip(rng.normal(120, 50, (40, 50)), 0, 255).astype(np.uint8)
    palette, indices = vqformat.quantize(image, 8)
    hist = grey.histogram(image)
    assert palette[:, 0].tolist() == grey.optimal_levels(hist, 8).tolist()
    values = np.flatnonzero(hist)
    assert np.mean((image - palette[indices, 0].astype(np.float64)) ** 2) == pytest.approx(
        squared_error(values, hist[values], palette[:, 0]) / image.size
    )


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_equal_channels_are_fitted_as_grey(method):
    """A grey photo saved as RGB (2 or 4 channels hold alpha: see test_alpha)."""
    channels = 3
    rng = np.random.default_rng(6)
    grey_image = np.clip(rng.normal(120, 50, (30, 40)), 0, 255).astype(np.uint8)
    stacked = np.repeat(grey_image[..., None], channels, axis=2)
    grey_palette, grey_indices = vqformat.quantize(grey_image, 16, method=method)
    palette, indices = vqformat.quantize(stacked, 16, method=method)
    assert np.array_equal(palette, np.repeat(grey_palette, channels, axis=1))
    assert np.array_equal(indices, grey_indices)


def test_unknown_method_is_a_clear_error():
    with pytest.raises(VQIError, match="unknown palette method"):
        palette_fitting.fit(np.zeros((4, 3), np.uint8), 2, method="nope")


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(20, 50))
def test_min_psnr_picks_the_smallest_grey_palette(seed, target):
    rng = np.random.default_rng(seed)
    pixels = np.clip(rng.normal(128, 30, (300, 1)), 0, 255).astype(np.uint8)
    table = palette_fitting.color_table(pixels)

    def quality(colors: int) -> float:
        levels = palette_fitting.fit(pixels, colors)
        return palette_fitting.psnr(table, levels, palette_fitting.assign(table.colors, levels))

    palette, indices = palette_fitting.quantize(pixels, 64, min_psnr=target)
    reached = palette_fitting.psnr(table, palette, palette_fitting.assign(table.colors, palette))
    if quality(64) >= target:
        assert reached >= target
        assert len(palette) == 1 or quality(len(palette) - 1) < target
    else:
        assert len(palette) == min(64, len(table.colors))
    assert np.array_equal(palette[indices], palette[palette_fitting.assign(pixels, palette)])


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.sampled_from([(), (3,)]), st.integers(0, 99))
def test_image_psnr_is_the_textbook_formula(height, width, channels, seed):
    rng = np.random.default_rng(seed)
    shape = (height, width, *channels)
    original = rng.integers(0, 256, shape, dtype=np.uint8)
    decoded = np.clip(original.astype(int) + rng.integers(-3, 4, shape), 0, 255).astype(np.uint8)
    mse = np.mean((original.astype(np.float64) - decoded) ** 2)
    expected = np.inf if mse == 0 else 10 * np.log10(255**2 / mse)
    assert palette_fitting.image_psnr(original, decoded) == pytest.approx(expected)
