"""LOAD_TRUNCATED_IMAGES keeps every strip that decodes, not only those before the damage."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageFile

import vqformat
from vqformat.format.container import Reader


@pytest.fixture
def salvaging(monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)


def strip_offsets(data: bytes) -> list[int]:
    """Where each IDAT chunk's data starts."""
    offsets, at = [], data.index(b"IDAT")
    while at != -1:
        offsets.append(at + 4)
        at = data.find(b"IDAT", at + 4)
    return offsets


@pytest.mark.parametrize("compression", ["stored", "deflate-byte-runs"])
def test_a_damaged_strip_costs_only_its_own_rows(salvaging, compression):
    pixels = np.random.default_rng(3).integers(0, 4, (64, 40), dtype=np.uint8) * 80
    data = bytearray(vqformat.encode(pixels, 4, compression=compression, strip_rows=8))
    assert Reader(io.BytesIO(bytes(data))).header.strip_count == 8
    damaged = strip_offsets(bytes(data))[1] + 3
    data[damaged] ^= 0xFF
    with Image.open(io.BytesIO(bytes(data))) as image:
        loaded = np.asarray(image)
    intact = np.r_[0:8, 16:64]
    assert np.array_equal(loaded[intact], pixels[intact])


def test_without_the_flag_damage_raises():
    data = bytearray(vqformat.encode(np.zeros((64, 40), np.uint8), 2, strip_rows=8))
    data[strip_offsets(bytes(data))[1] + 3] ^= 0xFF
    with Image.open(io.BytesIO(bytes(data))) as image, pytest.raises(OSError, match="broken"):
        image.load()
