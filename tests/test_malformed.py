"""Hostile files and bad input: the decoder raises only VQIError, detects corruption,
bounds memory before allocating, and the encoder refuses what it cannot store exactly.

What must hold for arbitrary bytes is defined once, in tests/fuzz_targets.py, and
shared with the coverage-guided fuzzer; these tests drive it with every truncation and
byte flip of the reference vectors, hypothesis mutations of fresh files, and the
regression corpus of inputs that once broke something.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import io
import os
import resource
import struct
import subprocess
import sys
import threading
import tracemalloc
import zlib
from pathlib import Path

import fuzz_targets as targets
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vqformat
from vqformat.format import bitpack
from vqformat.format.container import HEAD, IDAT, IEND, PLTE, SIGNATURE, chunk_bytes
from vqformat.format.methods import COMPRESSION_METHODS as METHODS
from vqformat.format.methods import codec_by_name

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "spec" / "vectors"
REGRESSIONS = Path(__file__).resolve().parent / "regressions"
VECTOR_FILES = sorted(VECTORS.glob("*.vqi"))
FLIP_MASKS = (0x01, 0x10, 0x80, 0xFF)
TRAILING = b"\x00trailing bytes, not part of the image\xff"
SMALL_PEAK = 4 << 20  # bytes: what rejecting a forged file may cost at most


def _ids(paths):
    return [path.name for path in paths]


# --- building files field by field, valid or not ------------------------------


def _head(width, height, channels, colors, compression=0, strip_rows=None, bits=None, version=1):
    bits = (colors - 1).bit_length() if bits is None else bits
    strip_rows = height if strip_rows is None else strip_rows
    return struct.pack(
        ">BBBBIIII", version, channels, bits, compression, width, height, colors, strip_rows
    )


def _file(head, palette, payloads, trailing=b""):
    chunks = [chunk_bytes(HEAD, head), chunk_bytes(PLTE, palette)]
    chunks += [chunk_bytes(IDAT, payload) for payload in payloads]
    return SIGNATURE + b"".join(chunks) + chunk_bytes(IEND, b"") + trailing


def _chunk_prefix(length, chunk_type):
    """A chunk's length and type with whatever length a forger likes, and no data yet."""
    return struct.pack(">I4s", length, chunk_type)


def _peak_while(function):
    """(exception raised or None, peak bytes traced) while running ``function``."""
    tracemalloc.start()
    try:
        function()
        raised = None
    except vqformat.VQIError as error:
        raised = error
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return raised, peak


API_READERS = (vqformat.read_info, vqformat.decode, vqformat.decode_indexed, vqformat.verify)


def _api_outcomes(data):
    """Whether read_info, decode, decode_indexed and verify each accepted ``data``."""
    outcomes = []
    for function in API_READERS:
        try:
            function(data)
            outcomes.append(True)
        except vqformat.VQIError:
            outcomes.append(False)
    return outcomes


# --- every truncation and every byte flip of the reference vectors ------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", VECTOR_FILES, ids=_ids(VECTOR_FILES))
def test_every_truncation_is_rejected(path):
    data = path.read_bytes()
    head_end = len(SIGNATURE) + 12 + 20
    for size in range(len(data)):
        info_ok, decode_ok, indexed_ok, verify_ok = _api_outcomes(data[:size])
        assert not (decode_ok or indexed_ok or verify_ok), f"prefix of {size} bytes accepted"
        assert info_ok == (size >= head_end), f"read_info on a prefix of {size} bytes"
        targets.check_api(data[:size])


@pytest.mark.timeout(120)
@pytest.mark.parametrize("path", VECTOR_FILES, ids=_ids(VECTOR_FILES))
def test_every_byte_flip_is_detected(path):
    data = path.read_bytes()
    expected = vqformat.decode(data)
    for position in range(len(data)):
        for mask in FLIP_MASKS:
            flipped = bytearray(data)
            flipped[position] ^= mask
            _, decode_ok, indexed_ok, verify_ok = _api_outcomes(bytes(flipped))
            assert not (decode_ok or indexed_ok or verify_ok), f"flip {mask:#x} at {position}"
    for position in range(len(TRAILING)):
        padded = bytearray(data + TRAILING)
        padded[len(data) + position] ^= 0xFF
        assert np.array_equal(vqformat.decode(bytes(padded)), expected)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", VECTOR_FILES, ids=_ids(VECTOR_FILES))
def test_byte_flips_without_crc_raise_only_vqierror(path):
    """With CRCs off a flip reaches the parser; it must still fail cleanly or decode."""
    data = path.read_bytes()
    for position in range(len(data)):
        for mask in (0x01, 0xFF):
            flipped = bytearray(data)
            flipped[position] ^= mask
            targets.check_api(bytes(flipped))


def _require_pillow_plugin():
    if targets.pillow_format() is None:
        pytest.skip("no Pillow plugin for .vqi is registered: vqformat.pillow_plugin not present")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("path", VECTOR_FILES, ids=_ids(VECTOR_FILES))
def test_pillow_rejects_every_truncation_and_flip(path, monkeypatch):
    _require_pillow_plugin()
    from PIL import Image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", targets.FUZZ_MAX_PIXELS)
    data = path.read_bytes()
    assert np.array_equal(targets.pillow_load(data), vqformat.decode(data))
    for size in range(len(data)):
        assert targets.pillow_load(data[:size]) is None, f"prefix of {size} bytes loaded"
    for position in range(len(data)):
        for mask in FLIP_MASKS:
            flipped = bytearray(data)
            flipped[position] ^= mask
            assert targets.pillow_load(bytes(flipped)) is None, f"flip {mask:#x} at {position}"
            if mask in (0x01, 0xFF):  # behind repaired CRCs, the parser must fail cleanly
                targets.check_pillow(bytes(flipped))
    assert np.array_equal(targets.pillow_load(data + TRAILING), vqformat.decode(data))


# --- hypothesis mutations of freshly encoded files -----------------------------


@st.composite
def fresh_files(draw):
    """A small file written by the encoder, with any method of COMPRESSION_METHODS."""
    colors = draw(st.sampled_from([1, 2, 3, 5, 16, 200, 256, 257, 1000]))
    channels = draw(st.integers(1, 4))
    height, width = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    palette = rng.integers(0, 256, size=(colors, channels), dtype=np.uint8)
    indices = rng.integers(0, colors, size=(height, width))
    method = draw(st.sampled_from(sorted(METHODS)))
    strip_rows = draw(st.integers(1, height))
    return vqformat.encode_indexed(palette, indices, compression=method, strip_rows=strip_rows)


INTERESTING_U32 = [0, 1, 2, 3, 7, 8, 255, 256, 65535, 65536, 65537, 2**31 - 1, 2**31, 2**32 - 1]
HEAD_FIELDS = struct.Struct(">BBBBIIII")


@st.composite
def mutations(draw):
    """A fresh file after one of: byte flips, an inserted run, a deleted run, a forged
    HEAD field (with its CRC recomputed) or a forged chunk length."""
    original = draw(fresh_files())
    data = bytearray(original)
    kind = draw(st.sampled_from(["flip", "insert", "delete", "head", "length"]))
    if kind == "flip":
        for _ in range(draw(st.integers(1, 4))):
            data[draw(st.integers(0, len(data) - 1))] ^= draw(st.integers(1, 255))
    elif kind == "insert":
        at = draw(st.integers(0, len(data)))
        data[at:at] = draw(st.binary(min_size=1, max_size=64))
    elif kind == "delete":
        at = draw(st.integers(0, len(data) - 1))
        data[at : at + draw(st.integers(1, 64))] = b""
    elif kind == "head":
        fields = list(HEAD_FIELDS.unpack(data[16:36]))
        field = draw(st.integers(0, len(fields) - 1))
        limit = 255 if field < 4 else 2**32 - 1
        choices = [value for value in INTERESTING_U32 if value <= limit]
        fields[field] = draw(st.sampled_from(choices) | st.integers(0, limit))
        data[8:40] = chunk_bytes(HEAD, HEAD_FIELDS.pack(*fields))
    else:
        at, _, _ = draw(st.sampled_from(list(targets.iter_chunks(bytes(data)))))
        data[at : at + 4] = draw(st.sampled_from(INTERESTING_U32)).to_bytes(4, "big")
    return kind, original, bytes(data)


@pytest.mark.timeout(120)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations())
def test_mutations_raise_only_vqierror(mutation):
    kind, original, data = mutation
    targets.check_api(data)  # CRC checks off, and on after repairing every CRC
    _, decode_ok, indexed_ok, _ = _api_outcomes(data)  # CRC checks on, as a user decodes
    assert decode_ok == indexed_ok
    if kind == "flip":  # flips may cancel out; otherwise a CRC catches them
        assert decode_ok == (data == original)


@pytest.mark.timeout(60)
@settings(max_examples=150, deadline=None)
@given(fresh_files(), st.data())
def test_single_flip_is_detected_in_fresh_files(data, draw):
    position = draw.draw(st.integers(0, len(data) - 1))
    flipped = bytearray(data)
    flipped[position] ^= draw.draw(st.integers(1, 255))
    _, decode_ok, indexed_ok, verify_ok = _api_outcomes(bytes(flipped))
    assert not (decode_ok or indexed_ok or verify_ok)


# --- forged sizes: rejected before anything is allocated from them -----------

MAX_U31 = 2**31 - 1


def _forged_dimensions():
    return _file(_head(MAX_U31, MAX_U31, 4, 2), b"\0" * 8, [])


@pytest.mark.parametrize("function", [vqformat.decode, vqformat.decode_indexed])
def test_forged_dimensions_rejected_with_little_memory(function):
    raised, peak = _peak_while(lambda: function(_forged_dimensions()))
    assert "2147483647x2147483647 pixels exceeds the limit" in str(raised)
    assert peak < SMALL_PEAK


@pytest.mark.parametrize("function", [vqformat.decode, vqformat.decode_indexed])
def test_forged_dimensions_without_a_limit_are_implausible(function):
    """With the limit lifted, the missing strips give the forgery away before allocation."""
    raised, peak = _peak_while(lambda: function(_forged_dimensions(), max_pixels=None))
    assert "holds 0 complete IDAT chunks" in str(raised)
    assert peak < SMALL_PEAK


def _run_limited(code, address_space=1 << 30):
    """Run ``code`` in a fresh interpreter limited to ``address_space`` bytes; its stdout."""
    limit = lambda: resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))  # noqa: E731
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, preexec_fn=limit, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


OUTCOME = """
import io, sys, vqformat
def outcome(call):
    try:
        call()
        return "ok"
    except Exception as error:
        return type(error).__name__
"""


def test_valid_image_too_large_for_memory_is_a_memory_error():
    """k = 1 needs no index bits: 77 valid bytes hold 2**32 pixels, beyond a 1 GiB limit."""
    data = _file(_head(1 << 16, 1 << 16, 1, 1), b"\x80", [b""])
    assert vqformat.read_info(data).width == 1 << 16
    code = OUTCOME + f"print(outcome(lambda: vqformat.decode({data!r}, max_pixels=None)))"
    assert _run_limited(code) == "MemoryError"


def test_lzma_dictionary_is_not_sized_by_a_forged_strip():
    """A 4-byte strip declaring 2**30 pixels (as read from a pipe, where no plausibility
    check runs): the dictionary is bounded by what 4 bytes can expand to, not the strip."""
    code = OUTCOME + (
        "from vqformat.format.methods import codec_by_name\n"
        "codec = codec_by_name('lzma-packed-bands')\n"
        "print(outcome(lambda: codec.decode(b'\\x08\\x01\\x00\\x01', 1024, 1 << 20, 1)))"
    )
    assert _run_limited(code, 512 << 20) == "VQIError"


def test_lzma_strip_beyond_four_gib_is_a_vqierror():
    codec = codec_by_name("lzma-packed-bands")
    payload = b"\x20\x08" + bytes(range(256)) + b"\x00"  # an empty LZMA2 stream
    with pytest.raises(vqformat.VQIError, match="does not expand to the declared 4295032832"):
        codec.decode(payload, 1 << 16, (1 << 16) + 1, 8)


@pytest.mark.parametrize("rows", [slice(0, 2, 0), slice("a"), slice(0.5, 2), slice(0, 2, 1.0)])
def test_bad_row_slices_are_vqierrors(rows):
    data = (VECTORS / "l-k1-stored.vqi").read_bytes()
    with pytest.raises(vqformat.VQIError, match="rows must"):
        vqformat.decode(data, rows=rows)


@pytest.mark.parametrize("size", [40, 85])
def test_tiny_hostile_files_cost_little_to_reject(size):
    """Headers declaring ~10**8 pixels, with no strips (40 bytes) or a 1-byte one (85)."""
    if size == 40:
        data = SIGNATURE + chunk_bytes(HEAD, _head(1, 178_000_000, 1, 2, strip_rows=1))
    else:
        head = _head(32768, 32768, 4, 2, codec_by_name("deflate").code)
        data = _file(head, bytes(8), [b"\x78"])
    assert len(data) == size
    for function in (vqformat.decode, vqformat.decode_indexed):
        raised, peak = _peak_while(functools.partial(function, io.BytesIO(data)))
        assert raised is not None and peak < SMALL_PEAK
    pillow = "import resource\nfrom PIL import Image\nImage.MAX_IMAGE_PIXELS = None\n"
    peak = "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss"
    baseline = _run_limited(OUTCOME + pillow + f"print({peak})")
    load = f"print(outcome(lambda: Image.open(io.BytesIO({data!r})).load()), {peak})"
    outcome, peak_kib = _run_limited(OUTCOME + pillow + load).split()
    assert outcome == "OSError"
    assert int(peak_kib) - int(baseline) < 10 << 10  # KiB


def _tiny_with_forged(chunk_type):
    """A 4x4 file whose next chunk declares 2**31 - 1 bytes but holds 10."""
    head = chunk_bytes(HEAD, _head(4, 4, 1, 2))
    plte = chunk_bytes(PLTE, b"\0\xff")
    forged = _chunk_prefix(MAX_U31, chunk_type) + bytes(10)
    if chunk_type == PLTE:
        return SIGNATURE + head + forged
    return SIGNATURE + head + plte + forged


@pytest.mark.parametrize("chunk_type", [PLTE, IDAT, b"tEXt", IEND])
def test_forged_chunk_length_rejected_with_little_memory(chunk_type):
    data = _tiny_with_forged(chunk_type)
    raised, peak = _peak_while(lambda: vqformat.decode(data))
    assert raised is not None
    assert peak < SMALL_PEAK


def test_chunk_length_above_two_to_the_31_is_rejected():
    data = SIGNATURE + chunk_bytes(HEAD, _head(4, 4, 1, 2))
    data += _chunk_prefix(2**31, b"tEXt")
    with pytest.raises(vqformat.VQIError, match="exceeds the limit"):
        vqformat.decode(data + bytes(100))


@functools.cache
def _deflate_bomb():
    """A 20 kB zlib stream that inflates to 20 MB."""
    return zlib.compress(bytes(20 << 20), 9)


@pytest.mark.parametrize("side", [64, 1024])
def test_deflate_bomb_stops_at_the_declared_size(side):
    """A stream inflating to 20 MB in an image whose index stream is side**2 / 8 bytes."""
    bomb = _deflate_bomb()
    size = side * side // 8
    payload = bomb[: METHODS["deflate"].max_payload(side, side, 1)]
    data = _file(_head(side, side, 1, 2, compression=1), b"\0\xff", [payload])
    raised, peak = _peak_while(lambda: vqformat.decode(data))
    assert "deflate" in str(raised)
    assert peak < SMALL_PEAK + 4 * size + side * side


def test_decoding_a_large_strip_costs_a_few_bytes_a_pixel():
    """A 16-megapixel single-strip file of 2 kB: memory stays near the output's size."""
    side = 4096
    payload = zlib.compress(bytes(side * side // 8), 9)
    data = _file(_head(side, side, 1, 2, compression=1), b"\0\xff", [payload])
    assert len(data) < 20_000
    raised, peak = _peak_while(lambda: vqformat.decode(data))
    assert raised is None
    assert peak < 4 * side * side


# --- the pixel limit -----------------------------------------------------------


def test_pixel_limit_defaults_to_max_pixels():
    for function in (vqformat.decode, vqformat.decode_indexed):
        assert inspect.signature(function).parameters["max_pixels"].default == vqformat.MAX_PIXELS


@pytest.mark.parametrize("function", [vqformat.decode, vqformat.decode_indexed])
def test_default_pixel_limit_is_enforced_before_allocation(function):
    width = 1 << 15
    height = vqformat.MAX_PIXELS // width + 1
    data = _file(_head(width, height, 4, 1), b"\0" * 4, [b""])
    raised, peak = _peak_while(lambda: function(data))
    assert "exceeds the limit" in str(raised)
    assert peak < SMALL_PEAK


@pytest.mark.parametrize("function", [vqformat.decode, vqformat.decode_indexed])
def test_pixel_limit_is_configurable(function):
    data = _file(_head(300, 200, 1, 1), b"\x07", [b""])
    with pytest.raises(vqformat.VQIError, match="300x200 pixels exceeds the limit of 59999"):
        function(data, max_pixels=59_999)
    for limit in (60_000, None):
        result = function(data, max_pixels=limit)
        decoded = result[1] if isinstance(result, tuple) else result
        assert decoded.shape == (200, 300)
    assert vqformat.read_info(data).width == 300  # the header alone is never over a limit


# --- streams and trailing data ---------------------------------------------------


PIPE_FILES = VECTOR_FILES[:4] + VECTOR_FILES[-3:]


def _pipe_reader(payload, buffering):
    """The read end of an os.pipe() fed ``payload`` by a thread, then closed."""
    read_fd, write_fd = os.pipe()

    def feed():
        with os.fdopen(write_fd, "wb") as writer:
            writer.write(payload)

    threading.Thread(target=feed, daemon=True).start()
    return os.fdopen(read_fd, "rb", buffering=buffering)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("buffering", [0, -1], ids=["raw", "buffered"])
@pytest.mark.parametrize("path", PIPE_FILES, ids=_ids(PIPE_FILES))
def test_decode_from_a_pipe_leaves_trailing_bytes_unread(path, buffering):
    data = path.read_bytes()
    with _pipe_reader(data + TRAILING, buffering) as stream:
        assert not stream.seekable()
        pixels = vqformat.decode(stream)
        assert stream.read() == TRAILING
    assert np.array_equal(pixels, vqformat.decode(data))


@pytest.mark.parametrize("step", [1, 3, 64])
def test_short_reads_are_retried(step):
    data = VECTORS.joinpath("rgb-k257-deflate.vqi").read_bytes()
    stream = targets.TrickleStream(data + TRAILING, step)
    palette, indices = vqformat.decode_indexed(stream)
    assert stream.position == len(data)
    assert np.array_equal(palette[indices], vqformat.decode(data))


@pytest.mark.parametrize("path", VECTOR_FILES, ids=_ids(VECTOR_FILES))
def test_trailing_bytes_after_iend_are_ignored(path):
    data = path.read_bytes()
    for trailing in (b"\0", TRAILING, SIGNATURE + data):
        assert np.array_equal(vqformat.decode(data + trailing), vqformat.decode(data))


def test_text_stream_is_refused_clearly():
    with pytest.raises(vqformat.VQIError, match="binary"):
        vqformat.decode(io.StringIO("not a binary stream at all"))


def test_non_contiguous_buffer_is_read():
    data = VECTORS.joinpath("example-l-k3-stored.vqi").read_bytes()
    spread = np.zeros(2 * len(data), dtype=np.uint8)
    spread[::2] = np.frombuffer(data, dtype=np.uint8)
    view = memoryview(spread)[::2]
    assert np.array_equal(vqformat.decode(view), vqformat.decode(data))


# --- indices and padding -----------------------------------------------------------


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("colors", [3, 5, 6, 255, 257, 1000, 40000])
def test_index_at_or_above_k_is_rejected(colors, method):
    bits = (colors - 1).bit_length()
    indices = np.zeros((2, 3), dtype=np.uint16)
    indices[1, 2] = colors + (colors * 7) % ((1 << bits) - colors)  # some value in k..2**b-1
    codec = codec_by_name(method)
    payload = codec.encode(indices, bits)
    data = _file(_head(3, 2, 1, colors, compression=codec.code), bytes(colors), [payload])
    with pytest.raises(vqformat.VQIError, match="outside the palette"):
        vqformat.decode(data)
    with pytest.raises(vqformat.VQIError, match="outside the palette"):
        vqformat.decode_indexed(data)


@pytest.mark.parametrize("method", ["stored", "deflate"])
@pytest.mark.parametrize("padding_byte", [0x1A41, 0x1A48, 0x1A4F])
def test_nonzero_padding_bits_are_rejected(method, padding_byte):
    """Six 2-bit indices leave four padding bits in the second byte (spec §9)."""
    stream = padding_byte.to_bytes(2, "big")
    payload = stream if method == "stored" else zlib.compress(stream)
    code = codec_by_name(method).code
    data = _file(_head(3, 2, 1, 3, compression=code), b"\0\x80\xff", [payload])
    with pytest.raises(vqformat.VQIError, match="padding"):
        vqformat.decode(data)


def test_deflate_with_a_preset_dictionary_is_rejected():
    compressor = zlib.compressobj(zdict=b"\x1a\x40")
    payload = compressor.compress(b"\x1a\x40") + compressor.flush()
    data = _file(_head(3, 2, 1, 3, compression=1), b"\0\x80\xff", [payload])
    with pytest.raises(vqformat.VQIError, match="preset dictionary"):
        vqformat.decode(data)


def test_unpacking_in_pieces_matches_packing(monkeypatch):
    """Strips are unpacked a bounded number of indices at a time; the seams must not show."""
    monkeypatch.setattr(bitpack, "UNPACK_CHUNK", 16)
    rng = np.random.default_rng(7)
    for bits in range(1, 17):
        for count in (1, 15, 16, 17, 33, 100):
            indices = rng.integers(0, 1 << bits, size=count)
            packed = bitpack.pack(indices, bits)
            assert np.array_equal(bitpack.unpack(packed, count, bits), indices)


# --- the regression corpus ---------------------------------------------------------

REGRESSION_FILES = sorted(path for path in REGRESSIONS.glob("*") if path.is_file())


def test_regression_corpus_is_named_by_what_broke_and_hash():
    assert REGRESSION_FILES, "the regression corpus is empty"
    for path in REGRESSION_FILES:
        digest = hashlib.sha1(path.read_bytes()).hexdigest()[:12]
        assert path.stem.endswith(f"-{digest}"), f"{path.name} is not named by its hash"


@pytest.mark.timeout(10)
@pytest.mark.parametrize("path", REGRESSION_FILES, ids=_ids(REGRESSION_FILES))
def test_regression_corpus_replays_cleanly(path):
    data = path.read_bytes()
    targets.check_api(data)
    _api_outcomes(data)  # as a user decodes: CRCs checked, the default pixel limit
    if targets.pillow_format() is not None:
        targets.check_pillow(data)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_plausibility_check_accepts_the_most_compressible_valid_files(method):
    """A constant image of 2**22 pixels compresses best of all: it must still pass."""
    indices = np.zeros((1024, 4096), dtype=np.uint8)
    indices[0, 0] = 1
    data = vqformat.encode_indexed(np.array([[0], [255]], np.uint8), indices, compression=method)
    assert np.array_equal(vqformat.decode_indexed(io.BytesIO(data))[1], indices)
