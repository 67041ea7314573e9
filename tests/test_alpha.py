"""Transparency: colours with alpha are fitted and mapped by their visible error."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vqformat
from vqformat import pipeline
from vqformat.quantizer import palette as palette_fitting
from vqformat.quantizer import streaming


def composites(rgba: np.ndarray) -> np.ndarray:
    """The image over black and over white, side by side in the last axis."""
    values = rgba.astype(np.float64)
    alpha = values[..., -1:] / 255
    over_black = values[..., :-1] * alpha
    return np.concatenate([over_black, over_black + 255 * (1 - alpha)], axis=-1)


def composite_psnr(original: np.ndarray, decoded: np.ndarray) -> float:
    mse = np.mean((composites(original) - composites(decoded)) ** 2)
    return 10 * np.log10(255**2 / mse)


def soft_disc(size: int = 96, channels: int = 4, seed: int = 0) -> np.ndarray:
    """A smooth colour field inside a soft-edged disc, random colours under alpha 0."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] / size
    field = np.stack([x, y, (x + y) / 2], axis=-1)[..., : channels - 1] * 255
    radius = np.hypot(y - 0.5, x - 0.5) * 2
    alpha = np.clip((0.85 - radius) / 0.3, 0, 1) * 255
    colour = field + rng.normal(0, 6, field.shape)
    garbage = rng.integers(0, 256, field.shape)
    colour = np.where(alpha[..., None] == 0, garbage, colour)
    return np.dstack([colour, alpha]).clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize("channels", [2, 4])
@pytest.mark.parametrize("colors", [2, 16, 64])
def test_one_transparent_entry_and_every_invisible_pixel_on_it(channels, colors):
    image = soft_disc(channels=channels)
    palette, indices = vqformat.quantize(image, colors)
    transparent = np.flatnonzero(palette[:, -1] == 0)
    assert len(transparent) == 1
    assert not palette[transparent].any()
    assert np.all(indices[image[..., -1] == 0] == transparent[0])
    assert len(palette) == colors


@pytest.mark.parametrize("channels", [2, 4])
def test_colour_under_alpha_zero_changes_nothing(channels):
    image = soft_disc(channels=channels)
    cleared = image.copy()
    cleared[image[..., -1] == 0] = 0
    palette, indices = vqformat.quantize(image, 32)
    cleared_palette, cleared_indices = vqformat.quantize(cleared, 32)
    np.testing.assert_array_equal(palette, cleared_palette)
    np.testing.assert_array_equal(indices, cleared_indices)


def test_fit_beats_fitting_the_stored_channels():
    image = soft_disc()
    pixels = image.reshape(-1, 4)
    palette, indices = vqformat.quantize(image, 16)
    ours = composite_psnr(image, palette[indices])
    # The previous objective: k-means on the four stored channels, nearest by them.
    table = palette_fitting.color_table(pixels)
    plain = palette_fitting.fit_kmeans(table, 16)
    nearest = np.argmin(((pixels[:, None].astype(float) - plain[None]) ** 2).sum(-1), axis=1)
    assert ours > composite_psnr(pixels, plain[nearest]) + 1.0
    assert ours > 26.0


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 12), st.sampled_from([2, 4]), st.integers(0, 2**32 - 1))
def test_few_colours_round_trip_exactly_even_when_invisible(count, channels, seed):
    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 256, (count, channels), dtype=np.uint8)
    colours[: count // 2, -1] = 0  # distinct invisible colours are kept as they are
    image = colours[rng.integers(0, count, (9, 11))]
    palette, indices = vqformat.quantize(image, 16)
    np.testing.assert_array_equal(palette[indices], image)
    decoded = vqformat.decode(vqformat.encode(image, 16, palette=np.unique(colours, axis=0)))
    np.testing.assert_array_equal(decoded, image)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([2, 4]))
def test_assignment_is_nearest_composite(seed, channels):
    rng = np.random.default_rng(seed)
    palette = np.unique(rng.integers(0, 256, (12, channels), dtype=np.uint8), axis=0)
    pixels = rng.integers(0, 256, (200, channels), dtype=np.uint8)
    indices = palette_fitting.assign(pixels, palette)
    errors = ((composites(pixels)[:, None] - composites(palette)[None]) ** 2).sum(-1)
    chosen = errors[np.arange(len(pixels)), indices]
    np.testing.assert_allclose(chosen, errors.min(axis=1), atol=0.5)


def test_min_psnr_is_judged_on_the_composites():
    image = soft_disc()
    palette, indices = vqformat.quantize(image, 256, min_psnr=30.0)
    assert composite_psnr(image, palette[indices]) >= 30.0
    assert len(palette) < 256


@pytest.mark.parametrize("channels", [2, 4])
def test_sampled_fit_of_a_large_image_maps_by_visible_error(monkeypatch, channels):
    monkeypatch.setattr(pipeline, "FIT_PIXELS", 2000)
    monkeypatch.setattr(streaming, "BAND_PIXELS", 2000)
    image = soft_disc(channels=channels)
    decoded = vqformat.decode(vqformat.encode(image, 32, strip_rows=7))
    palette, indices = vqformat.decode_indexed(vqformat.encode(image, 32, strip_rows=7))
    assert np.count_nonzero(palette[:, -1] == 0) == 1
    assert not decoded[image[..., -1] == 0].any()
    assert composite_psnr(image, decoded) > 27.0
    pixels = image.reshape(-1, channels)
    errors = ((composites(pixels)[:, None] - composites(palette)[None]) ** 2).sum(-1)
    chosen = errors[np.arange(len(pixels)), indices.ravel()]
    np.testing.assert_allclose(chosen, errors.min(axis=1), atol=0.5)
