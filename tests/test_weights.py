"""Smoothness weights of the colour fit: their values, how they are summed and sampled,
and that they lean the palette towards smooth areas without breaking exact images."""

import numpy as np
import pytest

import vqformat
from vqformat.quantizer import palette as palette_fitting
from vqformat.quantizer.streaming import ImageRows, sample_pixels
from vqformat.quantizer.weights import CONTRAST, smoothness_weights


def test_flat_areas_weigh_one_and_busy_ones_less():
    rng = np.random.default_rng(0)
    image = np.full((32, 64, 3), 120, np.uint8)
    image[:, 32:] = rng.integers(0, 256, (32, 32, 3))
    weights = smoothness_weights(image).reshape(32, 64)
    assert weights.dtype == np.float64
    assert np.all(weights > 0) and np.all(weights <= 1)
    assert np.all(weights[:, :30] == 1)
    assert weights[:, 34:].max() < 0.2


def test_weight_is_one_half_where_the_local_deviation_is_contrast():
    """A checkerboard of 128 +- a: every interior 3x3 window holds 5 of one value and 4
    of the other, variance a**2 * 80 / 81."""
    amplitude = CONTRAST * 9 / np.sqrt(80)
    rows, cols = np.indices((16, 16))
    board = 128 + amplitude * np.where((rows + cols) % 2 == 0, 1, -1)
    image = np.stack([board, board, board + 20], axis=2)  # colour: grey weighs 1
    rounded = np.rint(image).astype(np.uint8)
    deviation = (rounded[..., 0].max() - rounded[..., 0].min()) / 2
    expected = 1 / (1 + deviation**2 * 80 / 81 / CONTRAST**2)
    interior = smoothness_weights(rounded).reshape(16, 16)[1:-1, 1:-1]
    np.testing.assert_allclose(interior, expected, rtol=1e-4)
    assert expected == pytest.approx(0.5, abs=0.02)


def test_color_table_sums_the_weights_of_each_colour():
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 4, (500, 3), dtype=np.uint8)
    weights = rng.random(500)
    table = palette_fitting.color_table(pixels, weights)
    expected = [weights[table.inverse == number].sum() for number in range(len(table.colors))]
    np.testing.assert_allclose(table.weights, expected)
    assert palette_fitting.color_table(pixels).weights is None


def test_reduced_histogram_weighs_bins_and_their_means():
    colors = np.array([[0, 0, 0], [2, 2, 2], [200, 0, 0]], np.uint8)
    table = palette_fitting.ColorTable(colors, np.array([1, 1, 5]), np.arange(3))
    means, totals = palette_fitting.reduced_histogram(table, 6, np.array([3.0, 1.0, 0.5]))
    np.testing.assert_allclose(totals, [4.0, 0.5])
    np.testing.assert_allclose(means, [[0.5, 0.5, 0.5], [200, 0, 0]])


def test_sampled_weights_belong_to_the_sampled_pixels():
    """``weigh`` here returns each pixel's red value: a sample's weights must match."""
    rng = np.random.default_rng(2)
    image = ImageRows.of(rng.integers(0, 256, (1100, 1000, 3), dtype=np.uint8))
    sample, weights = sample_pixels(image, 5000, 3, lambda band: band[..., 0].ravel() * 1.0)
    assert len(sample) == 5000
    np.testing.assert_array_equal(weights, sample[:, 0])
    assert sample_pixels(image, 5000, 3)[1] is None
    np.testing.assert_array_equal(sample_pixels(image, 5000, 3)[0], sample)


def _half_smooth_half_busy() -> np.ndarray:
    """A smooth colour ramp on the left, coloured noise on the right."""
    rng = np.random.default_rng(3)
    ramp = np.linspace(0, 255, 96)
    left = np.stack(np.broadcast_arrays(ramp[None, :], 40.0, 255 - ramp[None, :]), axis=-1)
    image = np.empty((96, 192, 3), np.uint8)
    image[:, :96] = np.rint(np.broadcast_to(left, (96, 96, 3)))
    image[:, 96:] = rng.integers(0, 256, (96, 96, 3))
    return image


def test_weighted_fit_lowers_the_error_of_smooth_areas():
    image = _half_smooth_half_busy()
    pixels = image.reshape(-1, 3)
    smooth = (np.arange(image.shape[1]) < 96)[None, :].repeat(image.shape[0], 0).ravel()
    errors = []
    for weights in (None, smoothness_weights(image)):
        palette, indices = palette_fitting.quantize(pixels, 16, weights=weights)
        error = (palette[indices].astype(float) - pixels) ** 2
        errors.append(error[smooth].mean())
    assert errors[1] < 0.8 * errors[0]


def test_the_encoder_weighs_colour_images():
    image = _half_smooth_half_busy()
    weights = smoothness_weights(image)
    expected = palette_fitting.quantize(image.reshape(-1, 3), 16, weights=weights)
    palette, indices = vqformat.quantize(image, 16)
    np.testing.assert_array_equal(palette, expected[0])
    np.testing.assert_array_equal(indices.ravel(), expected[1])
    assert vqformat.encode(image, 16, seed=5) == vqformat.encode(image, 16, seed=5)


@pytest.mark.parametrize("colors", [10, 16])
def test_images_of_at_most_k_colours_stay_exact(colors):
    rng = np.random.default_rng(4)
    entries = rng.integers(0, 256, (10, 3), dtype=np.uint8)
    image = entries[rng.integers(0, 10, (64, 80))]
    image[:, :40] = entries[0]  # smooth and busy areas both
    palette, indices = vqformat.quantize(image, colors)
    np.testing.assert_array_equal(palette[indices], image)


def test_grey_pixels_all_weigh_one():
    rng = np.random.default_rng(4)
    grey = np.repeat(rng.integers(0, 256, (20, 30, 1), dtype=np.uint8), 3, axis=2)
    assert np.array_equal(smoothness_weights(grey), np.ones(600))
    grey[5, 5, 2] ^= 1  # one pixel off the grey axis: filtered as colour
    assert smoothness_weights(grey).min() < 1
