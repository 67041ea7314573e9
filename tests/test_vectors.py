"""spec/vectors/: the decoder reads exactly these pixels, the encoder writes what they hold."""

import hashlib
import json
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

import vqformat

VECTORS = Path(__file__).resolve().parent.parent / "spec" / "vectors"
NAMES = sorted(
    str(path.relative_to(VECTORS).with_suffix(""))
    for path in VECTORS.rglob("*.vqi")
    if path.parent.name != "reject"  # must-reject files: tests/test_reject_vectors.py
)


def _load(name):
    return (VECTORS / f"{name}.vqi").read_bytes(), json.loads(
        (VECTORS / f"{name}.json").read_text()
    )


def test_vectors_exist():
    assert len(NAMES) >= 12
    modes = {_load(name)[1]["mode"] for name in NAMES}
    colors = {_load(name)[1]["colors"] for name in NAMES}
    methods = {_load(name)[1]["compression"] for name in NAMES}
    assert modes == {"L", "LA", "RGB", "RGBA"}
    assert {1, 2, 3, 16, 256, 257} <= colors
    assert methods == {"stored", "deflate", "deflate-byte-runs", "lzma-packed-bands"}
    assert {_load(name)[1]["bits_per_index"] for name in NAMES} == set(range(17))


def _matches(expected: dict, key: str, values: np.ndarray, layout: str) -> bool:
    """``values`` equal the vector's array ``key``, or hash to its ``key_sha256``."""
    if key in expected:
        return values.tolist() == expected[key]
    digest = hashlib.sha256(values.astype(layout).tobytes()).hexdigest()
    return digest == expected[f"{key}_sha256"]


@pytest.mark.parametrize("name", NAMES)
def test_decoder_reads_exact_pixels(name):
    data, expected = _load(name)
    pixels = vqformat.decode(data)
    assert pixels.dtype == np.uint8
    samples = pixels[..., None] if expected["mode"] == "L" else pixels
    assert _matches(expected, "pixels", samples, "u1")
    palette, indices = vqformat.decode_indexed(data)
    assert _matches(expected, "palette", palette, "u1")
    assert _matches(expected, "indices", indices, ">u2")


@pytest.mark.parametrize("name", NAMES)
def test_header_fields(name):
    data, expected = _load(name)
    info = vqformat.read_info(data)
    for field in (
        "width",
        "height",
        "mode",
        "colors",
        "bits_per_index",
        "compression",
        "strip_rows",
    ):
        assert getattr(info, field) == expected[field], field
    assert len(data) == expected["bytes"]


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, data) of every chunk: the framing the spec pins for every encoder."""
    chunks, at = [], 8
    while at < len(data):
        (length,) = struct.unpack_from(">I", data, at)
        chunks.append((data[at + 4 : at + 8], data[at + 8 : at + 8 + length]))
        at += 12 + length
    return chunks


@pytest.mark.parametrize("name", [n for n in NAMES if not _load(n)[1].get("decode_only")])
def test_encoder_writes_what_the_vector_holds(name):
    """Byte for byte where the spec pins the bytes (stored files; HEAD, PLTE and the
    number of IDATs), by decoding elsewhere: another zlib or liblzma build may write
    other compressed bytes that decode alike."""
    data, expected = _load(name)
    palette, indices = vqformat.decode_indexed(data)  # as the vector's JSON holds them
    written = vqformat.encode_indexed(
        palette, indices, compression=expected["compression"], strip_rows=expected["strip_rows"]
    )
    if expected["compression"] == "stored":
        assert written == data
    ours, theirs = _chunks(written), _chunks(data)
    assert ours[:2] == theirs[:2]
    assert [kind for kind, _ in ours] == [kind for kind, _ in theirs]
    got_palette, got_indices = vqformat.decode_indexed(written)
    assert np.array_equal(got_palette, palette)
    assert np.array_equal(got_indices, indices)


def test_worked_example_matches_spec():
    data, _ = _load("example-l-k3-stored")
    spec = (VECTORS.parent / "vqi.md").read_text()
    block = spec[spec.index("The whole file, 81 bytes") : spec.index("The six 2-bit indices")]
    rows = (
        re.match(r"\d+\s+((?:[0-9A-F]{2} )*[0-9A-F]{2})\s", line) for line in block.splitlines()
    )
    listed = bytes.fromhex("".join(row.group(1) for row in rows if row))
    assert listed == data


def _with_head(data: bytes, head: bytes) -> bytes:
    """The file with another HEAD chunk, CRC and length recomputed."""
    chunk = struct.pack(">I", len(head)) + b"HEAD" + head
    return data[:8] + chunk + struct.pack(">I", zlib.crc32(chunk[4:])) + data[40:]


@pytest.mark.parametrize(
    "version, message", [(0, "no VQI version 0"), (2, "newer encoder"), (255, "newer encoder")]
)
def test_unknown_versions_say_whether_they_are_newer(version, message):
    data, _ = _load("example-l-k3-stored")
    with pytest.raises(vqformat.VQIError, match=message):
        vqformat.decode(_with_head(data, bytes([version]) + data[17:36]))


def test_head_length_is_checked_before_the_version():
    data, _ = _load("example-l-k3-stored")
    with pytest.raises(vqformat.VQIError, match="HEAD chunk declares 21 bytes"):
        vqformat.decode(_with_head(data, b"\x02" + data[17:36] + b"\0"))
