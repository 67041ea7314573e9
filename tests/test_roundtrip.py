"""Round-trip properties of the codec over modes, shapes, palette sizes and methods."""

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vqformat
from vqformat.format.methods import COMPRESSION_METHODS as METHODS

METHOD_NAMES = sorted(METHODS)
OVERHEAD = 8 + 12 + 20 + 12 + 12  # signature, HEAD, PLTE and IEND framing


@st.composite
def indexed_images(draw, max_colors=65536):
    """A palette of k distinct entries and (H, W) indices using them."""
    bits = draw(st.integers(0, (max_colors - 1).bit_length()))
    low = (1 << (bits - 1)) + 1 if bits else 1
    colors = draw(st.integers(low, min(max_colors, 1 << bits) if bits else 1))
    channels = draw(st.integers(1 if colors <= 256 else 2, 4))
    height = draw(st.integers(1, 12))
    width = draw(st.integers(1, 12))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    keys = rng.choice(256**channels, size=colors, replace=False) if colors > 1 else np.zeros(1)
    shifts = 8 * np.arange(channels - 1, -1, -1)
    palette = ((keys.astype(np.int64)[:, None] >> shifts) & 255).astype(np.uint8)
    indices = rng.integers(0, colors, size=(height, width))
    strip_rows = draw(st.integers(1, height))
    return palette, indices, strip_rows


@settings(max_examples=150, deadline=None)
@given(indexed_images(), st.sampled_from(METHOD_NAMES))
def test_indexed_round_trip_is_exact(case, method):
    palette, indices, strip_rows = case
    data = vqformat.encode_indexed(palette, indices, compression=method, strip_rows=strip_rows)
    got_palette, got_indices = vqformat.decode_indexed(data)
    assert np.array_equal(got_palette, palette)
    assert np.array_equal(got_indices, indices)
    pixels = vqformat.decode(data)
    expected = palette[indices]
    assert np.array_equal(pixels, expected[..., 0] if palette.shape[1] == 1 else expected)
    info = vqformat.read_info(data)
    assert (info.width, info.height, info.colors) == (
        indices.shape[1],
        indices.shape[0],
        len(palette),
    )
    assert info.bits_per_index == (len(palette) - 1).bit_length()


@settings(max_examples=60, deadline=None)
@given(indexed_images(max_colors=300))
def test_stored_size_is_exactly_the_layout(case):
    palette, indices, strip_rows = case
    data = vqformat.encode_indexed(palette, indices, compression="stored", strip_rows=strip_rows)
    height, width = indices.shape
    bits = (len(palette) - 1).bit_length()
    strips = -(-height // strip_rows)
    body = sum(
        (min(strip_rows, height - s * strip_rows) * width * bits + 7) // 8 for s in range(strips)
    )
    assert len(data) == OVERHEAD + palette.size + 12 * strips + body


@st.composite
def images(draw):
    channels = draw(st.sampled_from([None, 1, 2, 3, 4]))
    height, width = draw(st.integers(1, 20)), draw(st.integers(1, 20))
    distinct = draw(st.integers(1, 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = (distinct,) if channels is None else (distinct, channels)
    colors = rng.integers(0, 256, size=shape, dtype=np.uint8)
    return colors[rng.integers(0, distinct, size=(height, width))]


@settings(max_examples=80, deadline=None)
@given(images(), st.integers(1, 64), st.sampled_from(METHOD_NAMES))
def test_pixels_round_trip(pixels, colors, method):
    data = vqformat.encode(pixels, colors, compression=method)
    decoded = vqformat.decode(data)
    expected_shape = pixels.shape[:2] if pixels.ndim == 2 or pixels.shape[2] == 1 else pixels.shape
    assert decoded.shape == expected_shape and decoded.dtype == np.uint8
    flat = pixels.reshape(pixels.shape[0], pixels.shape[1], -1)
    distinct = len(np.unique(flat.reshape(-1, flat.shape[2]), axis=0))
    palette, _ = vqformat.decode_indexed(data)
    assert len(palette) == min(colors, distinct)
    assert len(np.unique(palette, axis=0)) == len(palette)  # no duplicate entries
    if distinct <= colors:
        assert np.array_equal(decoded.reshape(flat.shape), flat)


def test_k_larger_than_distinct_colours_gives_those_colours():
    pixels = np.array([[[1, 2, 3], [4, 5, 6]], [[1, 2, 3], [7, 8, 9]]], dtype=np.uint8)
    palette, _ = vqformat.decode_indexed(vqformat.encode(pixels, colors=256))
    assert sorted(map(tuple, palette.tolist())) == [(1, 2, 3), (4, 5, 6), (7, 8, 9)]


def test_three_bits_a_pixel_for_eight_grey_levels():
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, size=(64, 48), dtype=np.uint8)
    data = vqformat.encode(pixels, colors=8, compression="stored")
    info = vqformat.read_info(data)
    assert info.colors == 8 and info.bits_per_index == 3
    assert len(data) == OVERHEAD + 8 + 12 + 64 * 48 * 3 // 8


def test_sources_bytes_path_and_file(tmp_path):
    pixels = np.arange(30, dtype=np.uint8).reshape(5, 6)
    data = vqformat.encode(pixels, 4)
    path = tmp_path / "x.vqi"
    path.write_bytes(data)
    for source in (data, bytearray(data), memoryview(data), path, str(path), io.BytesIO(data)):
        assert np.array_equal(vqformat.decode(source), vqformat.decode(data))


def test_read_info_reads_only_the_header():
    data = vqformat.encode(np.zeros((4, 4, 3), dtype=np.uint8), 2)
    header_end = 8 + 12 + 20
    info = vqformat.read_info(io.BytesIO(data[:header_end] + b"garbage that is no chunk"))
    assert (info.width, info.height, info.mode) == (4, 4, "RGB")


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((4, 4), dtype=np.float32),
        np.zeros((4, 4), dtype=np.uint16),
        np.zeros((4, 4), dtype=bool),
        np.zeros((0, 4), dtype=np.uint8),
        np.zeros((4, 4, 5), dtype=np.uint8),
        np.zeros((4,), dtype=np.uint8),
    ],
)
def test_bad_encoder_input_is_a_clear_error(bad):
    with pytest.raises(vqformat.VQIError):
        vqformat.encode(bad)


@pytest.mark.parametrize("colors", [0, 65537, -1, 2.5, True])
def test_bad_colour_count(colors):
    with pytest.raises(vqformat.VQIError, match="colors"):
        vqformat.encode(np.zeros((2, 2), dtype=np.uint8), colors)


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, "0", True])
def test_bad_seed(seed):
    with pytest.raises(vqformat.VQIError, match="seed"):
        vqformat.encode(np.zeros((2, 2), dtype=np.uint8), 2, seed=seed)


@pytest.mark.parametrize("min_psnr", [float("nan"), float("inf"), -5, 0, "x", True])
def test_bad_quality_target(min_psnr):
    with pytest.raises(vqformat.VQIError, match="min_psnr"):
        vqformat.encode(np.zeros((2, 2), dtype=np.uint8), 2, min_psnr=min_psnr)
