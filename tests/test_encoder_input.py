"""Encoder input: what encode, encode_indexed and their options refuse, and odd
array layouts they take."""

import numpy as np
import pytest

import vqformat

RNG = np.random.default_rng(3)
PHOTO = RNG.integers(0, 256, size=(6, 7, 3), dtype=np.uint8)

BAD_PIXELS = {
    "float": (PHOTO.astype(np.float64), "must be uint8"),
    "nan": (np.full((4, 4), np.nan), "must be uint8"),
    "sixteen-bit": (PHOTO.astype(np.uint16) * 257, "must be uint8"),
    "signed": (PHOTO.astype(np.int16), "must be uint8"),
    "boolean": (PHOTO > 127, "boolean"),
    "object": (PHOTO.astype(object), "must be uint8"),
    "empty": (np.zeros((0, 0), np.uint8), "empty"),
    "zero-width": (np.zeros((5, 0, 3), np.uint8), "empty"),
    "zero-height": (np.zeros((0, 5), np.uint8), "empty"),
    "five-channels": (np.zeros((4, 4, 5), np.uint8), "C in 1..4"),
    "zero-channels": (np.zeros((4, 4, 0), np.uint8), "C in 1..4"),
    "one-dimensional": (np.zeros(16, np.uint8), "shape"),
    "four-dimensional": (np.zeros((2, 2, 2, 3), np.uint8), "shape"),
}


@pytest.mark.parametrize("name", sorted(BAD_PIXELS))
def test_bad_pixels_are_refused(name):
    pixels, message = BAD_PIXELS[name]
    with pytest.raises(vqformat.VQIError, match=message):
        vqformat.encode(pixels, 4)


@pytest.mark.parametrize("colors", [0, -1, 65537, 2**40, 2.0, "16", None, True])
def test_bad_color_counts_are_refused(colors):
    with pytest.raises(vqformat.VQIError, match="colors"):
        vqformat.encode(PHOTO, colors)


@pytest.mark.parametrize("strip_rows", [0, -1, 7, 2.5, "2", True])
def test_bad_strip_heights_are_refused(strip_rows):
    with pytest.raises(vqformat.VQIError, match="strip height"):
        vqformat.encode(PHOTO, 256, strip_rows=strip_rows)


def _read_only(array):
    array = array.copy()
    array.flags.writeable = False
    return array


UNUSUAL_LAYOUTS = {
    "read-only": _read_only(PHOTO),
    "fortran-order": np.asfortranarray(PHOTO),
    "strided": np.repeat(PHOTO, 2, axis=1)[:, ::2],
    "reversed": PHOTO[::-1, ::-1],
    "channel-view": np.stack([PHOTO[..., 2], PHOTO[..., 0]], axis=2),
    "grey-column": PHOTO[:, :1, 0],
}


@pytest.mark.parametrize("name", sorted(UNUSUAL_LAYOUTS))
def test_unusual_memory_layouts_encode_exactly(name):
    pixels = UNUSUAL_LAYOUTS[name]
    decoded = vqformat.decode(vqformat.encode(pixels, 256))  # 42 pixels: every colour kept
    assert np.array_equal(decoded, pixels)


PALETTE = np.array([[0, 0, 0], [255, 0, 0], [0, 0, 255]], dtype=np.uint8)
INDICES = np.array([[0, 1, 2], [2, 1, 0]])

BAD_INDEXED = {
    "palette-float": (PALETTE.astype(float), INDICES, "palette must be uint8"),
    "palette-int64": (PALETTE.astype(np.int64), INDICES, "palette must be uint8"),
    "palette-five-channels": (np.zeros((3, 5), np.uint8), INDICES, "palette must be uint8"),
    "palette-three-dimensional": (PALETTE[:, :, None], INDICES, "palette must be uint8"),
    "palette-empty": (np.zeros((0, 3), np.uint8), INDICES, "1..65536 entries"),
    "palette-too-long": (np.zeros((65537, 1), np.uint8), INDICES, "1..65536 entries"),
    "indices-out-of-range": (PALETTE, INDICES + 1, "0..2"),
    "indices-negative": (PALETTE, INDICES - 1, "0..2"),
    "indices-huge": (PALETTE, INDICES.astype(np.uint64) << np.uint64(63), "0..2"),
    "indices-float": (PALETTE, INDICES.astype(float), "integers"),
    "indices-boolean": (PALETTE, INDICES > 0, "integers"),
    "indices-one-dimensional": (PALETTE, INDICES[0], "2-D"),
    "indices-empty": (PALETTE, INDICES[:0], "non-empty"),
    "indices-zero-width": (PALETTE, INDICES[:, :0], "non-empty"),
}


@pytest.mark.parametrize("name", sorted(BAD_INDEXED))
def test_bad_indexed_input_is_refused(name):
    palette, indices, message = BAD_INDEXED[name]
    with pytest.raises(vqformat.VQIError, match=message):
        vqformat.encode_indexed(palette, indices)


def test_unknown_compression_is_refused():
    with pytest.raises(vqformat.VQIError, match="unknown compression"):
        vqformat.encode_indexed(PALETTE, INDICES, compression="lzma")


def test_indexed_input_layouts_and_dtypes_encode_exactly():
    for indices in (INDICES.astype(np.uint8), INDICES.T.copy().T, _read_only(INDICES)[:, ::-1]):
        palette, got = vqformat.decode_indexed(vqformat.encode_indexed(PALETTE[::-1], indices))
        assert np.array_equal(palette, PALETTE[::-1])
        assert np.array_equal(got, indices)
