"""Floyd-Steinberg dithering: valid indices, local averages kept, clear refusals."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.ndimage import gaussian_filter

import vqformat
from vqformat import pipeline
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


@pytest.mark.parametrize("channels", [1, 3])
def test_dithering_keeps_local_averages_that_nearest_mapping_bands(channels):
    pixels = gradient(channels=channels)
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
    channels=st.sampled_from([1, 3]),
    colors=st.integers(1, 256),
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
@given(st.integers(1, 16), st.sampled_from([1, 3]), st.integers(0, 2**32 - 1))
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
    assert vqformat.read_info(data).strip_rows == 16  # four strips, each diffused alone
    plain = vqformat.decode(vqformat.encode(pixels, 4, strip_rows=16))
    assert blurred_mse(pixels, decoded) < blurred_mse(pixels, plain) / 2


def test_a_given_palette_can_be_dithered_onto():
    palette = np.array([[0, 0, 0], [255, 255, 255]], dtype=np.uint8)
    decoded = vqformat.decode(vqformat.encode(gradient(), palette=palette, dither=True))
    assert abs(decoded.mean() - gradient().mean()) < 2


@pytest.mark.parametrize(
    ("pixels", "options", "message"),
    [
        (np.zeros((4, 4, 4), np.uint8), {"colors": 16}, "grey or RGB"),
        (np.zeros((4, 4, 2), np.uint8), {"colors": 16}, "grey or RGB"),
        (gradient(), {"colors": 257}, "at most 256"),
        (
            gradient(),
            {"palette": np.arange(900, dtype=np.uint16).astype(np.uint8).reshape(300, 3)},
            "at most 256",
        ),
    ],
)
def test_what_cannot_be_dithered_is_a_clear_error(pixels, options, message):
    with pytest.raises(vqformat.VQIError, match=message):
        vqformat.encode(pixels, dither=True, **options)
    if "palette" not in options:
        with pytest.raises(vqformat.VQIError, match=message):
            vqformat.quantize(pixels, dither=True, **options)
