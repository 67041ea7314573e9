"""Every file of spec/vectors/reject/ is rejected, as spec §8 says it must be."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from PIL import Image

import vqformat

ROOT = Path(__file__).resolve().parent.parent
REJECT = ROOT / "spec" / "vectors" / "reject"
FILES = sorted(REJECT.glob("*.vqi"))


def _record(path: Path) -> dict:
    return json.loads(path.with_suffix(".json").read_text())


def _rules() -> list[int]:
    """The numbers of spec §8's list of what a decoder must reject."""
    spec = (ROOT / "spec" / "vqi.md").read_text()
    section = spec[spec.index("## 8.") : spec.index("## 9.")]
    return [int(number) for number in re.findall(r"^(\d+)\. ", section, re.MULTILINE)]


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_decoders_reject(path):
    data = path.read_bytes()
    with pytest.raises(vqformat.VQIError):
        vqformat.decode(data)
    with pytest.raises(vqformat.VQIError):
        vqformat.decode_indexed(io.BytesIO(data))
    with pytest.raises(OSError), Image.open(io.BytesIO(data)) as im:  # documented: OSError
        im.load()


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_verify_rejects_structural_faults(path):
    record = _record(path)
    if not record["structural"]:
        pytest.skip("found only by decoding the strip")
    with pytest.raises(vqformat.VQIError):
        vqformat.verify(path.read_bytes())


def test_every_rule_has_a_vector():
    named = {_record(path)["rule"] for path in FILES}
    assert named == {f"§8 item {rule}" for rule in _rules()}
    assert all(path.stat().st_size < 200 for path in FILES)
