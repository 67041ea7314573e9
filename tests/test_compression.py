"""Strip codecs: exact round trips, bounded decompression, malformed payloads, scan and order."""

import json
import lzma
import struct
import tracemalloc
import zlib
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vqformat
from vqformat import VQIError
from vqformat.format import bands, bitpack
from vqformat.format.bands import (
    band_scan,
    band_unscan,
    field_bits,
    join_runs,
    split_runs,
    unpack_band_fields,
    unpack_fields,
)
from vqformat.format.methods import COMPRESSION_METHODS as METHODS
from vqformat.format.methods import codec_by_name, deflate_bound, deflate_within_bound
from vqformat.format.ordering import adjacency_order

BAND_METHODS = ["deflate-byte-runs", "lzma-packed-bands"]
SHAPES = st.one_of(
    st.tuples(st.just(1), st.just(1)),
    st.tuples(st.just(1), st.integers(1, 70)),
    st.tuples(st.integers(1, 70), st.just(1)),
    st.tuples(st.integers(1, 70), st.integers(1, 40)),
)


@st.composite
def strips(draw):
    """A (rows, width) strip of b-bit indices, often using few distinct values, like images."""
    bits = draw(st.integers(0, 16))
    rows, width = draw(SHAPES)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    values = rng.integers(0, 1 << bits, size=draw(st.integers(1, 6)))
    return rng.choice(values, size=(rows, width)), bits


@settings(max_examples=120, deadline=None)
@given(strips(), st.sampled_from(sorted(METHODS)))
def test_every_method_round_trips_exactly(strip, method):
    indices, bits = strip
    codec = codec_by_name(method)
    payload = codec.encode(indices, bits)
    assert len(payload) <= codec.max_payload(*indices.shape, bits)
    decoded = codec.decode(payload, *indices.shape, bits)
    assert decoded.dtype == (np.uint8 if bits <= 8 else np.uint16)
    assert np.array_equal(decoded, indices)


@settings(max_examples=60, deadline=None)
@given(SHAPES, st.integers(1, 40))
def test_band_scan_is_a_permutation_it_inverts(shape, height):
    indices = np.arange(shape[0] * shape[1]).reshape(shape)
    sequence = band_scan(indices, height)
    assert sorted(sequence.tolist()) == list(range(indices.size))
    assert np.array_equal(band_unscan(sequence, *shape, height), indices)


@settings(max_examples=60, deadline=None)
@given(SHAPES, st.sampled_from([2, 3, 4, 8]), st.integers(0, 3), st.integers(0, 2**32 - 1))
def test_band_unscan_of_bytes_inverts_band_scan_at_any_alignment(shape, height, offset, seed):
    """2- and 4-row bands of bytes are unscanned as 16- and 32-bit words, which must
    give each row its own byte whatever the buffer's alignment."""
    indices = np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)
    stream = bytes(offset) + band_scan(indices, height).tobytes()
    sequence = np.frombuffer(stream, dtype=np.uint8, offset=offset)
    assert np.array_equal(band_unscan(sequence, *shape, height), indices)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(0, 3), max_size=400))
def test_join_runs_inverts_split_runs_and_counts_the_literals(values):
    sequence = np.array(values, dtype=np.uint8)
    starts, literals = split_runs(sequence)
    assert np.array_equal(join_runs(starts, literals), sequence)
    for wrong in (literals[:-1], np.append(literals, 0)):
        if sequence.size:
            with pytest.raises(VQIError, match="literals are given"):
                join_runs(starts, wrong)


@pytest.mark.parametrize("long_runs", [0, 1 << 30], ids=["repeat", "counts"])
@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=200), st.integers(1, 9))
def test_join_runs_fills_runs_either_way(long_runs, values, block):
    """Runs are filled by ``repeat`` or by counts a block of positions at a time, chosen
    by their mean length; either way, a run that spans blocks or a block that starts a
    run must come out as it went in, and a wrong number of literals is rejected."""
    sequence = np.repeat(np.array(values, dtype=np.uint8), 1 + np.arange(len(values)) % 5)
    starts, literals = split_runs(sequence)
    with mock.patch.multiple(bands, FILL_BLOCK=block, LONG_RUNS=long_runs):
        assert np.array_equal(join_runs(starts, literals), sequence)
        for wrong in (literals[:-1], np.append(literals, 0)):
            with pytest.raises(VQIError, match="literals are given"):
                join_runs(starts, wrong)


def test_band_scan_order_on_a_small_strip():
    indices = np.arange(15).reshape(5, 3)
    # two 2-row bands read column by column, then the last row on its own
    assert band_scan(indices, 2).tolist() == [0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11, 12, 13, 14]


@settings(max_examples=60, deadline=None)
@given(strips())
def test_adjacency_order_is_a_permutation(strip):
    indices, bits = strip
    symbols = 1 << min(bits, 8)
    order = adjacency_order(indices % symbols, symbols)
    assert sorted(order.tolist()) == list(range(symbols))


def test_adjacency_order_chains_touching_values():
    indices = np.array([[5, 5, 2, 2, 7, 7, 7]])
    assert adjacency_order(indices, 8)[:3].tolist() == [7, 2, 5]


@settings(max_examples=120, deadline=None)
@given(SHAPES, st.sampled_from([1, 2, 4, 8]), st.sampled_from([1, 2, 3, 4, 8]), st.data())
def test_fused_band_unpack_equals_unpack_then_unscan(shape, height, bits, data):
    field = field_bits(bits)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    indices = rng.integers(0, 1 << bits, size=shape).astype(np.uint8)
    packed = bitpack.pack(band_scan(indices, height), field)
    assert np.array_equal(unpack_band_fields(packed, *shape, height, field, bits), indices)
    flat = unpack_fields(packed, indices.size, field, bits)
    assert np.array_equal(band_unscan(flat, *shape, height), indices)


@pytest.mark.parametrize("height", [2, 3])
def test_fused_band_unpack_rejects_fields_past_the_palette_and_padding(height):
    # b = 3 in 4-bit fields: 15 is no 3-bit index; height 2 takes the fused path
    with pytest.raises(VQIError, match="does not fit"):
        unpack_band_fields(b"\x0f" + b"\0" * 5, 4, 3, height, 4, 3)
    with pytest.raises(VQIError, match="padding"):
        unpack_band_fields(b"\0\x01", 3, 1, height, 4, 3)


def test_byte_runs_decode_strips_whose_flags_mark_repeats_too():
    """Flags may be set where a byte repeats: every flag set stores the field stream."""
    indices = np.zeros((4, 6), dtype=np.uint8)
    indices[:, 3:] = 2
    packed = bitpack.pack(band_scan(indices, 2), 2)
    flags = zlib.compress(bitpack.pack(np.ones(len(packed), dtype=np.uint8), 1))
    payload = b"\x02" + struct.pack(">I", len(flags)) + flags + zlib.compress(packed)
    assert np.array_equal(codec_by_name("deflate-byte-runs").decode(payload, 4, 6, 2), indices)


def test_byte_runs_take_few_colour_strips_a_band_column_at_a_time():
    stripes = np.repeat(np.arange(40) // 5 % 2, 64).reshape(40, 64).T  # runs along rows
    payload = codec_by_name("deflate-byte-runs").encode(stripes, 1)
    assert payload[0] == 8  # 1-bit fields: a byte is a column of an 8-row band


def test_packed_lzma_strips_name_a_field_width_the_index_width_allows():
    codec = codec_by_name("lzma-packed-bands")
    indices = np.arange(24).reshape(4, 6) % 2
    payload = codec.encode(indices, 1)
    assert payload[:2] == b"\x08\x01"  # 1-bit codes, 8 to a byte: a byte is a band column
    assert np.array_equal(codec.decode(payload, 4, 6, 1), indices)
    for width in (0, 2, 4, 16):
        with pytest.raises(VQIError, match="field width"):
            codec.decode(payload[:1] + bytes([width]) + payload[2:], 4, 6, 1)


def test_field_widths():
    assert [field_bits(b) for b in range(17)] == [0, 1, 2, 4, 4] + [8] * 4 + [16] * 8


BOMB_SIZE = 64 << 20


def _runs_payload(flags: bytes, literals: bytes) -> bytes:
    """A deflate-byte-runs strip of band height 2 from its two zlib streams."""
    return b"\x02" + struct.pack(">I", len(flags)) + flags + literals


def _bomb(method: str) -> bytes:
    zeros = zlib.compress(b"\0" * BOMB_SIZE, 9)
    if method == "deflate-byte-runs flags":
        return _runs_payload(zeros, b"")
    if method == "deflate-byte-runs literals":
        return _runs_payload(zlib.compress(b"\xff" * 32), zeros)
    filters = [{"id": lzma.FILTER_LZMA2, "preset": 0}]
    stream = lzma.compress(b"\0" * BOMB_SIZE, lzma.FORMAT_RAW, filters=filters)
    return b"\x20\x08" + bytes(range(256)) + stream


@pytest.mark.parametrize(
    "case",
    [
        "deflate-byte-runs flags",
        "deflate-byte-runs literals",
        "lzma-packed-bands",
    ],
)
def test_bomb_is_rejected_with_little_memory(case):
    payload = _bomb(case)
    method = case.split()[0]
    codec = codec_by_name(method)
    tracemalloc.start()
    with pytest.raises(VQIError, match="does not expand"):
        codec.decode(payload, 16, 16, 8)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1 << 20


@pytest.mark.parametrize("method", BAND_METHODS)
@pytest.mark.parametrize("bits", [3, 8, 12])
def test_truncated_or_extended_payload_is_rejected(method, bits):
    indices = np.arange(60).reshape(6, 10) % (1 << bits)
    codec = codec_by_name(method)
    payload = codec.encode(indices, bits)
    for bad in (b"", b"\0", payload[:-1], payload + b"\0"):
        with pytest.raises(VQIError):
            codec.decode(bad, 6, 10, bits)


def test_out_of_range_fields_and_tables_are_rejected():
    # b = 3 stores 4-bit fields: a field of 15 is not a 3-bit index
    payload = _runs_payload(zlib.compress(b"\x80"), zlib.compress(b"\xf0"))
    with pytest.raises(VQIError, match="does not fit"):
        codec_by_name("deflate-byte-runs").decode(payload, 1, 1, 3)
    with pytest.raises(VQIError, match="start of a run"):
        codec_by_name("deflate-byte-runs").decode(
            _runs_payload(zlib.compress(b"\0"), zlib.compress(b"")), 1, 1, 3
        )
    lzma_bands = codec_by_name("lzma-packed-bands")
    raw_lzma2 = [{"id": lzma.FILTER_LZMA2}]
    with pytest.raises(VQIError, match="permutation"):
        stream = lzma.compress(b"\x01", lzma.FORMAT_RAW, filters=raw_lzma2)
        lzma_bands.decode(b"\x20\x08\x01\x01" + stream, 1, 1, 1)
    with pytest.raises(VQIError, match="does not fit"):
        stream = lzma.compress(b"\x07", lzma.FORMAT_RAW, filters=raw_lzma2)
        lzma_bands.decode(b"\x20\x08\x01\x00" + stream, 1, 1, 1)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(BAND_METHODS), st.integers(0, 16), st.data())
def test_corrupted_payloads_raise_vqi_error_only(method, bits, data):
    codec = codec_by_name(method)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    indices = rng.integers(0, 1 << bits, size=(9, 7))
    payload = bytearray(codec.encode(indices, bits))
    for _ in range(data.draw(st.integers(1, 4))):
        payload[data.draw(st.integers(0, len(payload) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(payload)))
    try:
        decoded = codec.decode(bytes(payload[:cut]), 9, 7, bits)
    except VQIError:
        return
    assert decoded.shape == (9, 7)
    assert int(decoded.max()) < 1 << bits


def test_every_method_has_test_vectors():
    vectors = Path(__file__).resolve().parent.parent / "spec" / "vectors"
    written = {json.loads(path.read_text())["compression"] for path in vectors.glob("*.json")}
    assert set(METHODS) <= written


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("bits", [1, 4, 8, 12, 16])
@pytest.mark.parametrize("shape", [(64, 80), (512, 512)])
def test_incompressible_strips_stay_within_the_bound(method, bits, shape):
    indices = np.random.default_rng(bits).integers(0, 1 << bits, size=shape)
    codec = codec_by_name(method)
    payload = codec.encode(indices, bits)
    assert len(payload) <= codec.max_payload(*shape, bits)
    assert np.array_equal(codec.decode(payload, *shape, bits), indices)


def _loose_deflate(data: bytes) -> bytes:
    """Legal zlib output that grows incompressible data past the bound (memLevel 1)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 15, 1)
    return compressor.compress(data) + compressor.flush()


def test_deflate_over_the_bound_falls_back_to_stored_blocks():
    data = np.random.default_rng(3).integers(0, 256, 512 * 512, dtype=np.uint8).tobytes()
    assert len(_loose_deflate(data)) > deflate_bound(len(data))
    payload = deflate_within_bound(data, _loose_deflate)
    assert len(payload) <= deflate_bound(len(data))
    assert zlib.decompress(payload) == data


def test_renumbering_keeps_the_given_palette_and_indices():
    rng = np.random.default_rng(7)
    gradient = np.add.outer(np.arange(40), np.arange(60)) // 7  # smooth: neighbours touch
    shuffle = rng.permutation(16)
    indices = shuffle[gradient % 16]
    palette = rng.integers(0, 256, size=(16, 3), dtype=np.uint8)
    data = vqformat.encode_indexed(palette, indices, compression="lzma-packed-bands")
    table = codec_by_name("lzma-packed-bands").encode(indices, 4)[2:18]
    assert list(table) != list(range(16))
    got_palette, got_indices = vqformat.decode_indexed(data)
    assert np.array_equal(got_palette, palette)
    assert np.array_equal(got_indices, indices)
