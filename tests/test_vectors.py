"""spec/vectors/: the encoder writes exactly these bytes, the decoder reads exactly these pixels."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

import vqformat

VECTORS = Path(__file__).resolve().parent.parent / "spec" / "vectors"
NAMES = sorted(path.stem for path in VECTORS.glob("*.vqi"))


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
    assert {"stored", "deflate"} <= methods


@pytest.mark.parametrize("name", NAMES)
def test_decoder_reads_exact_pixels(name):
    data, expected = _load(name)
    pixels = vqformat.decode(data)
    want = np.array(expected["pixels"], dtype=np.uint8)
    if expected["mode"] == "L":
        want = want[..., 0]
    assert pixels.dtype == np.uint8
    assert np.array_equal(pixels, want)
    palette, indices = vqformat.decode_indexed(data)
    assert palette.tolist() == expected["palette"]
    assert indices.tolist() == expected["indices"]


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


@pytest.mark.parametrize("name", [n for n in NAMES if not _load(n)[1].get("decode_only")])
def test_encoder_writes_exact_bytes(name):
    data, expected = _load(name)
    written = vqformat.encode_indexed(
        np.array(expected["palette"], dtype=np.uint8),
        np.array(expected["indices"]),
        compression=expected["compression"],
        strip_rows=expected["strip_rows"],
    )
    assert written == data


def test_worked_example_matches_spec():
    data, _ = _load("example-l-k3-stored")
    spec = (VECTORS.parent / "vqi.md").read_text()
    block = spec[spec.index("The whole file, 81 bytes") : spec.index("The six 2-bit indices")]
    rows = (
        re.match(r"\d+\s+((?:[0-9A-F]{2} )*[0-9A-F]{2})\s", line) for line in block.splitlines()
    )
    listed = bytes.fromhex("".join(row.group(1) for row in rows if row))
    assert listed == data
