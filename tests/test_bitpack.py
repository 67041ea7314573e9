"""Both bit-packing paths write the same layout for every width, and it round-trips."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vqformat.format import bitpack


@st.composite
def index_arrays(draw):
    bits = draw(st.integers(1, 16))
    values = draw(st.lists(st.integers(0, (1 << bits) - 1), min_size=0, max_size=200))
    return bits, np.array(values, dtype=np.uint16)


@settings(deadline=None)
@given(index_arrays())
def test_numpy_and_bitarray_paths_agree(case):
    bits, indices = case
    packed = bitpack.pack(indices, bits)
    assert len(packed) == bitpack.packed_size(indices.size, bits)
    if indices.size:
        assert packed == bitpack.pack_bitarray(indices, bits)
        assert np.array_equal(bitpack.unpack_bitarray(packed, indices.size, bits), indices)
    assert np.array_equal(bitpack.unpack(packed, indices.size, bits), indices)


@pytest.mark.parametrize("bits", range(1, 17))
def test_msb_first_layout(bits):
    # A single index of value 1 sets the last of its b bits; padding follows as zeros.
    packed = bitpack.pack(np.array([1], dtype=np.uint16), bits)
    as_int = int.from_bytes(packed, "big")
    assert as_int == 1 << (len(packed) * 8 - bits)


def test_three_bits_per_pixel_is_three_bits():
    indices = np.arange(8, dtype=np.uint8)
    assert bitpack.pack(indices, 3) == bytes([0b00000101, 0b00111001, 0b01110111])


def test_zero_bits_stores_nothing():
    assert bitpack.pack(np.zeros(10, dtype=np.uint8), 0) == b""
    assert np.array_equal(bitpack.unpack(b"", 10, 0), np.zeros(10))
