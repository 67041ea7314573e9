"""Images with transparency: fitted and assigned as seen (premultiplied alpha)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import vqformat
from vqformat.quantizer import palette as palette_fitting


def _soft_disc(size: int = 96, seed: int = 0) -> np.ndarray:
    """A noisy gradient inside a soft-edged disc, random colours under alpha 0."""
    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[:size, :size]
    radius = np.hypot(rows - size / 2, columns - size / 2)
    alpha = np.clip((0.35 * size - radius) / (0.1 * size), 0, 1) * 255
    rgb = np.stack([rows * 255 / size, columns * 255 / size, (rows + columns) * 127 / size], -1)
    rgb = np.clip(rgb + rng.normal(0, 12, rgb.shape), 0, 255)
    image = np.dstack([rgb, alpha]).astype(np.uint8)
    hidden = image[..., 3] == 0
    image[hidden, :3] = rng.integers(0, 256, (int(hidden.sum()), 3))
    return image


def _composites(image: np.ndarray) -> np.ndarray:
    """The image over black and over white, float."""
    values = image.astype(np.float64)
    alpha = values[..., -1:] / 255
    over_black = values[..., :-1] * alpha
    return np.concatenate([over_black, over_black + 255 * (1 - alpha)], axis=-1)


def _composite_psnr(original: np.ndarray, decoded: np.ndarray) -> float:
    error = np.mean((_composites(original) - _composites(decoded)) ** 2)
    return float(10 * np.log10(255**2 / error))


def test_one_entry_for_all_invisible_colours():
    image = _soft_disc()
    for colors in (16, 64):
        palette, indices = vqformat.quantize(image, colors)
        assert int((palette[:, 3] == 0).sum()) == 1
        hidden = image[..., 3] == 0
        assert np.all(palette[indices[hidden], 3] == 0)


def test_a_few_stray_invisible_pixels_get_no_entry_of_their_own():
    """An overlay whose alpha varies smoothly, with a few pixels at alpha 0: an entry
    for them would cost a band of the gradient more error than it saves."""
    alpha = np.repeat(np.linspace(20, 250, 240)[None, :], 32, axis=0).round()
    image = np.dstack([np.zeros((32, 240, 3)), alpha]).astype(np.uint8)
    image[0, :4, 3] = 0
    palette, indices = vqformat.quantize(image, 16)
    assert not np.any(palette[:, 3] == 0)
    assert len(palette) == 16
    forced = image.copy()
    forced[:, :120, 3] = 0  # half of it invisible: the entry pays
    palette, indices = vqformat.quantize(forced, 16)
    assert np.all(palette[indices[forced[..., 3] == 0], 3] == 0)


def test_seen_colours_beat_independent_channels():
    """The premultiplied fit spends entries on what shows; fitting the four channels
    independently (the straight RGBA k-means) is measurably worse once composited."""
    image = _soft_disc()
    palette, indices = vqformat.quantize(image, 16)
    table = palette_fitting.color_table(image.reshape(-1, 4))
    straight = palette_fitting.fit_kmeans(table, 16)
    straight_indices = palette_fitting._nearest(image.reshape(-1, 4), straight, np.float64)
    seen = _composite_psnr(image, palette[indices])
    independent = _composite_psnr(image, straight[straight_indices].reshape(image.shape))
    assert seen > independent + 1.0


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 12), st.integers(0, 2**32 - 1), st.sampled_from([2, 4]))
def test_few_colours_round_trip_exactly_even_invisible_ones(count, seed, channels):
    rng = np.random.default_rng(seed)
    colors = rng.integers(0, 256, (count, channels), dtype=np.uint8)
    colors[: count // 2, -1] = 0  # several distinct invisible colours
    image = colors[rng.integers(0, count, (8, 9))]
    palette, indices = vqformat.quantize(image, 16)
    assert np.array_equal(palette[indices], image)
    decoded = vqformat.decode(vqformat.encode(image, 16))
    assert np.array_equal(decoded, image)


def test_grey_with_alpha_keeps_one_invisible_entry():
    image = _soft_disc()[..., [0, 3]]
    palette, indices = vqformat.quantize(image, 8)
    assert palette.shape[1] == 2
    assert int((palette[:, 1] == 0).sum()) == 1
    assert np.all(palette[indices[image[..., 1] == 0], 1] == 0)


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 255), st.sampled_from([2, 4]), st.integers(0, 2**32 - 1))
def test_at_most_k_visible_colours_look_exact_whatever_lies_under_alpha_0(count, channels, seed):
    """A sprite of few colours whose exporter left noise under alpha 0: more than k
    distinct values, but the visible ones and one transparent entry fit the palette."""
    rng = np.random.default_rng(seed)
    visible = rng.integers(0, 256, (count, channels), dtype=np.uint8)
    visible[:, -1] = rng.integers(1, 256, count)
    image = visible[rng.integers(0, count, (24, 40))]
    hidden = rng.random((24, 40)) < 0.5
    image[hidden] = rng.integers(0, 256, (int(hidden.sum()), channels))
    image[hidden, -1] = 0
    palette, indices = vqformat.quantize(image, count + 1)
    decoded = palette[indices]
    assert np.array_equal(decoded[~hidden], image[~hidden])
    assert np.all(decoded[hidden] == 0) and int((palette[:, -1] == 0).sum()) == 1


def test_colours_a_level_apart_are_told_apart():
    """The fit converges on the colours as they are, not rounded: two heavy opaque
    colours one level apart keep an entry each (rounding them merges them)."""
    image = np.zeros((64, 64, 4), np.uint8)
    image[:30] = (100, 50, 50, 255)
    image[30:60] = (101, 50, 50, 255)
    image[60:] = (7, 99, 3, 0)  # invisible
    image[63, :8] = [(30 * i, 0, 0, 1) for i in range(8)]  # more visible colours than entries
    decoded = vqformat.decode(vqformat.encode(image, 4))
    assert np.array_equal(decoded[:60], image[:60])
