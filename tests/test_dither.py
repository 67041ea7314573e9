"""Selective Floyd-Steinberg dithering: raster-order result, local averages kept, any
channels and palette size, alpha respected, clear refusals."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.ndimage import gaussian_filter

import vqformat
from vqformat import pipeline
from vqformat.quantizer import dither
from vqformat.quantizer.dither import diffuse


def gradient(height: int = 48, width: int = 256, channels: int = 3) -> np.ndarray:
    """A smooth left-to-right ramp: few colours band it, dithering should not."""
    ramp = np.broadcast_to(np.arange(width, dtype=np.uint8), (height, width))
    return np.ascontiguousarray(np.repeat(ramp[..., None], channels, axis=2)).squeeze()


def blurred_mse(original: np.ndarray, decoded: np.ndarray) -> float:
    """Error as the eye sees it from a distance: both images low-pass filtered first."""
    sigma = (2, 2, 0) if original.ndim == 3 else 2
    blur = [gaussian_filter(image.astype(np.float64), sigma) for image in (original, decoded)]
    return float(np.mean((blur[0] - blur[1]) ** 2))


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_dithering_keeps_local_averages_that_nearest_mapping_bands(channels):
    pixels = gradient(channels=channels)
    if channels in (2, 4):
        pixels[..., -1] = 255  # opaque: the error seen is the colour's
    plain = vqformat.decode(vqformat.encode(pixels, 4))
    dithered = vqformat.decode(vqformat.encode(pixels, 4, dither=True))
    assert blurred_mse(pixels, dithered) < blurred_mse(pixels, plain) / 2
    # the plain mapping is the nearest entry, so its own (unblurred) error is the lower
    assert np.mean((pixels - dithered.astype(float)) ** 2) > np.mean(
        (pixels - plain.astype(float)) ** 2
    )


@settings(max_examples=25, deadline=None)
@given(
    height=st.integers(1, 12),
    width=st.integers(1, 12),
    channels=st.sampled_from([1, 2, 3, 4]),
    colors=st.integers(1, 300),
    seed=st.integers(0, 2**32 - 1),
)
def test_dithered_indices_address_the_palette(height, width, channels, colors, seed):
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (height, width, channels), dtype=np.uint8).squeeze(
        axis=2 if channels == 1 else ()
    )
    palette, indices = vqformat.quantize(pixels, colors, dither=True)
    assert indices.shape == (height, width)
    assert indices.max() < len(palette) <= colors
    decoded = vqformat.decode(vqformat.encode(pixels, colors, dither=True))
    assert np.array_equal(decoded, palette[indices].reshape(pixels.shape))


def test_diffusion_onto_an_exact_palette_is_exact():
    rng = np.random.default_rng(1)
    palette = rng.integers(0, 256, (7, 3), dtype=np.uint8)
    palette[1:3] = palette[0] + np.array([[1, 0, 0], [0, 1, 1]], dtype=np.uint8)  # near twins
    indices = rng.integers(0, 7, (20, 30))
    assert np.array_equal(diffuse(palette[indices], palette), indices)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 16), st.sampled_from([1, 2, 3, 4]), st.integers(0, 2**32 - 1))
def test_images_of_at_most_k_colours_stay_exact_when_dithered(colors, channels, seed):
    rng = np.random.default_rng(seed)
    base = (rng.integers(0, 4, (colors, channels)) + rng.integers(0, 252)).astype(np.uint8)
    pixels = base[rng.integers(0, colors, (9, 11))].squeeze()
    decoded = vqformat.decode(vqformat.encode(pixels, 16, dither=True))
    assert np.array_equal(decoded, pixels)


def test_large_images_dither_strip_by_strip(monkeypatch):
    monkeypatch.setattr(pipeline, "FIT_PIXELS", 1024)
    pixels = gradient(height=64)
    data = vqformat.encode(pixels, 4, dither=True, strip_rows=16)
    decoded = vqformat.decode(data)
    assert vqformat.read_info(data).strip_rows == 16  # four strips, diffused one by one
    plain = vqformat.decode(vqformat.encode(pixels, 4, strip_rows=16))
    assert blurred_mse(pixels, decoded) < blurred_mse(pixels, plain) / 2


PRIMARIES = np.array([[0, 0, 0], [255, 255, 255], [200, 40, 40]], dtype=np.uint8)


def test_carried_error_joins_strips_without_seams():
    # one flat colour: the same dither map everywhere, so only the seams could differ
    pixels = np.full((64, 37, 3), (90, 70, 60), np.uint8)
    whole = diffuse(pixels, PRIMARIES)
    carry = dither.carried_error(37, 3)
    joined = [
        diffuse(pixels[first : first + 16], PRIMARIES, 1.0, carry) for first in range(0, 64, 16)
    ]
    assert np.array_equal(np.vstack(joined), whole)
    assert np.abs(carry).sum() > 0  # the last row passed its error on
    fresh = [diffuse(pixels[first : first + 16], PRIMARIES) for first in range(0, 64, 16)]
    assert not np.array_equal(np.vstack(fresh), whole)


def test_large_images_carry_the_error_from_strip_to_strip(monkeypatch):
    pixels = np.full((64, 37, 3), (90, 70, 60), np.uint8)
    whole = vqformat.encode(pixels, palette=PRIMARIES, dither=True, strip_rows=16)
    monkeypatch.setattr(pipeline, "FIT_PIXELS", 1024)
    in_strips = vqformat.encode(pixels, palette=PRIMARIES, dither=True, strip_rows=16)
    assert np.array_equal(vqformat.decode(in_strips), vqformat.decode(whole))


def test_a_given_palette_can_be_dithered_onto():
    palette = np.array([[0, 0, 0], [255, 255, 255]], dtype=np.uint8)
    decoded = vqformat.decode(vqformat.encode(gradient(), palette=palette, dither=True))
    assert abs(decoded.mean() - gradient().mean()) < 2


def raster_order_reference(pixels: np.ndarray, palette: np.ndarray, strength: float) -> np.ndarray:
    """The same selective diffusion visiting one pixel at a time in raster order."""
    height, width, channels = pixels.shape
    space = dither._space(pixels.reshape(-1, channels)).reshape(height, width, -1)
    entries = dither._space(palette).astype(np.float64)
    shares = dither._shares(pixels, space, dither.NearestEntry(entries), strength)
    low, high = dither._target_bounds(channels)
    error = np.zeros(space.shape)
    indices = np.zeros((height, width), dtype=int)
    for y in range(height):
        for x in range(width):
            incoming = error[y, x] * shares.gain[y, x]
            if incoming @ incoming < shares.negligible:
                incoming = 0 * incoming
            target = np.clip(space[y, x] + incoming, low, high)
            indices[y, x] = np.argmin(((entries - target) ** 2).sum(axis=1))
            residual = target - entries[indices[y, x]]
            if residual @ residual > shares.largest:
                residual = residual * shares.damping[y, x]
            for dy, dx, share in ((0, 1, 7 / 16), (1, -1, 3 / 16), (1, 0, 5 / 16), (1, 1, 1 / 16)):
                if y + dy < height and 0 <= x + dx < width:
                    error[y + dy, x + dx] += share * residual
    return indices


@pytest.mark.parametrize(
    ("channels", "height", "width"), [(1, 13, 17), (3, 13, 17), (4, 13, 17), (3, 9, 1), (3, 7, 2)]
)
def test_lines_of_independent_pixels_give_the_raster_order_result(channels, height, width):
    rng = np.random.default_rng(channels + width)
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 14, y * 18, (x + y) * 8, 255 - y * 9][:channels], axis=-1)
    pixels = np.clip(pixels + rng.normal(0, 3, pixels.shape), 0, 255).astype(np.uint8)
    palette = rng.integers(0, 256, (9, channels), dtype=np.uint8)
    ours = diffuse(pixels, palette, 0.8)
    # float32 against float64: a rare near-tie may differ, the pattern may not
    assert np.mean(ours == raster_order_reference(pixels, palette, 0.8)) > 0.97


def test_busy_areas_take_more_error_than_smooth_well_fitted_ones():
    rng = np.random.default_rng(3)
    space = np.full((32, 64, 3), 100, np.float32)
    space[:, 32:] += rng.normal(0, 20, (32, 32, 3)).astype(np.float32)  # busy right half
    errors = np.full((32, 64), 3.0, np.float32)  # the palette fits both halves equally
    gain = dither._dither_map(space, errors, 3.0, np.zeros((32, 64), np.float32))
    assert np.all((gain > 0) & (gain <= dither._BUSY_SHARE))
    assert np.median(gain[:, 40:]) > 0.95 * dither._BUSY_SHARE
    assert np.median(gain[:, :24]) < 0.5


def test_fine_palettes_take_a_smaller_share_of_the_map():
    shares = [dither._palette_share(colors) for colors in (2, 16, 64, 128, 256, 4096)]
    assert shares[:3] == [1.0, 1.0, 1.0]
    assert 1.0 > shares[3] > shares[4] == shares[5] == dither._FINE_SHARE


def test_wide_patches_of_one_entry_take_more_error_on_fine_palettes_only():
    patch = np.zeros((16, 16), np.intp)  # a band: every pixel has the same nearest entry
    scattered = np.random.default_rng(4).integers(0, 256, (16, 16))
    grainy, rendered = np.zeros((16, 16), np.float32), np.ones((16, 16), np.float32)
    assert np.all(dither._wide_bands(patch, grainy, 256) == 1)
    assert 0 < dither._wide_bands(patch, grainy, 64).min() < 1
    assert np.all(dither._wide_bands(patch, grainy, 16) == 0)
    assert np.all(dither._wide_bands(patch, rendered, 256) == 0)  # the map releases those
    assert dither._wide_bands(scattered, grainy, 256)[2:-2, 2:-2].max() < 0.2


def test_small_palettes_that_fit_closely_are_dithered_almost_fully(monkeypatch):
    rng = np.random.default_rng(6)  # a faint grainy ramp, as a translucent overlay shows
    ramp = np.linspace(100, 130, 256)[None, :, None] + rng.normal(0, 1.5, (48, 256, 1))
    pixels = np.repeat(np.clip(np.rint(ramp), 0, 255).astype(np.uint8), 3, axis=2)
    palette = np.repeat(np.linspace(100, 130, 16).round().astype(np.uint8)[:, None], 3, axis=1)
    faint = blurred_mse(pixels, palette[diffuse(pixels, palette)])
    monkeypatch.setattr(dither, "_faint_fit", lambda colors, error: 0.0)
    assert faint < blurred_mse(pixels, palette[diffuse(pixels, palette)]) / 10


def test_only_small_palettes_with_a_close_fit_count_as_faint():
    assert dither._faint_fit(16, 0.5) > 0.99
    assert dither._faint_fit(16, dither._FAINT_MSE) == 0.5
    assert dither._faint_fit(16, 30.0) < 0.001  # a photograph's error at 16 entries
    assert 0 < dither._faint_fit(32, 0.5) < dither._faint_fit(8, 0.5) == dither._faint_fit(16, 0.5)
    assert dither._faint_fit(64, 0.5) == dither._faint_fit(256, 0.0) == 0


def test_smooth_areas_take_more_error_where_the_palette_bands_them():
    space = np.full((32, 32, 3), 100, np.float32)
    coarse, fine = np.full((32, 32), 300.0, np.float32), np.full((32, 32), 3.0, np.float32)
    grainy = np.zeros((32, 32), np.float32)
    gains = [dither._dither_map(space, errors, 30.0, grainy) for errors in (coarse, fine)]
    assert np.all(gains[0] > gains[1])


def test_areas_free_of_noise_take_all_the_error_where_entries_leave_some():
    rng = np.random.default_rng(5)
    rendered = gradient(height=32, width=64)  # steps of 1 level
    grainy = np.clip(rendered + rng.normal(0, 3, rendered.shape), 0, 255).astype(np.uint8)
    assert np.all(dither._noiseless(rendered) > 0.9)
    assert np.median(dither._noiseless(grainy)) < 0.1
    space = rendered.astype(np.float32)
    banded = np.full((32, 64), 6.0, np.float32)  # 2 a channel: a low floor, still bands
    fitted = np.full((32, 64), 0.03, np.float32)  # entries all but on the colours
    noiseless = dither._noiseless(rendered)
    gains = [dither._dither_map(space, errors, 3.0, noiseless) for errors in (banded, fitted)]
    grainy_gain = dither._dither_map(space, fitted, 3.0, np.zeros_like(noiseless))
    assert np.all(gains[0] > 0.9)
    assert np.all(gains[1] < 0.5)
    assert np.all(gains[1] - grainy_gain < 0.05)  # as if it had grain: no release


def test_translucent_areas_are_judged_by_their_own_grain():
    rng = np.random.default_rng(6)
    grain = np.clip(128 + rng.normal(0, 3, (32, 32, 3)), 0, 255).astype(np.uint8)
    faint = np.dstack([grain, np.full((32, 32), 20, np.uint8)])  # composited, grain < 1 level
    assert np.median(dither._noiseless(faint)) < 0.1


def test_noise_free_gradients_are_dithered_without_bands(monkeypatch):
    rendered = gradient(height=32)
    palette = np.linspace(0, 255, 9).astype(np.uint8)[:, None].repeat(3, axis=1)
    released = blurred_mse(rendered, palette[diffuse(rendered, palette)])
    monkeypatch.setattr(dither, "_noiseless", lambda pixels: np.zeros(pixels.shape[:2]))
    restrained = blurred_mse(rendered, palette[diffuse(rendered, palette)])
    assert released < restrained / 1.5  # as if grain hid its bands, it would keep them


def test_one_colour_outside_the_palette_is_not_taken_for_an_exact_image():
    palette = np.array([[0, 0, 0], [200, 10, 10], [10, 200, 10]], dtype=np.uint8)
    indices = np.random.default_rng(4).integers(0, 3, (96, 96))  # more than the sample
    pixels = palette[indices]
    pixels[-1, -1] = (190, 30, 20)  # not an entry, and off the sampled pixels
    result = diffuse(pixels, palette)
    assert result[-1, -1] == 1
    assert np.array_equal(result.ravel()[:-1], indices.ravel()[:-1])


def test_strength_zero_is_the_nearest_mapping_and_strength_grows_diffusion():
    pixels = gradient()
    plain = vqformat.decode(vqformat.encode(pixels, 4))
    assert np.array_equal(vqformat.decode(vqformat.encode(pixels, 4, dither=0.0)), plain)
    half = vqformat.decode(vqformat.encode(pixels, 4, dither=0.5))
    full = vqformat.decode(vqformat.encode(pixels, 4, dither=1.0))
    assert blurred_mse(pixels, full) < blurred_mse(pixels, half) < blurred_mse(pixels, plain)


def test_transparent_pixels_take_no_error_and_keep_the_transparent_entry():
    pixels = gradient(channels=4)
    pixels[..., -1] = 255
    pixels[:, ::3, -1] = 0  # invisible columns inside the ramp
    palette, indices = vqformat.quantize(pixels, 8, dither=True)
    transparent = np.flatnonzero(palette[:, -1] == 0)
    assert len(transparent) == 1
    assert np.all(indices[pixels[..., -1] == 0] == transparent[0])
    assert np.all(palette[indices[pixels[..., -1] > 0], -1] > 0)


@pytest.mark.parametrize("strength", [-0.1, 1.5, "yes", None, float("nan")])
def test_a_bad_strength_is_a_clear_error(strength):
    with pytest.raises(vqformat.VQIError, match=r"strength 0\.\.1"):
        vqformat.encode(gradient(), 4, dither=strength)


def test_soft_alpha_edges_take_less_error_than_hard_ones_and_fills():
    columns = np.arange(64)
    feathered = np.tile(np.clip(columns * 12, 0, 255), (8, 1)).astype(np.uint8)
    outline = np.tile(np.where(columns < 32, 0, 255), (8, 1)).astype(np.uint8)
    soft, hard = dither._soft_edges(feathered), dither._soft_edges(outline)
    assert np.all(soft[:, 1:20] > 0.5)
    assert np.all(hard < 0.05)
    assert np.all(soft[:, 24:] == 0)  # opaque fill: no edge
