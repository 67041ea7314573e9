"""How desktops and tools recognise .vqi files: spec/vqi.magic and spec/vqi-mime.xml."""

import shutil
import struct
import subprocess
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import vqformat
from vqformat.format.container import SIGNATURE
from vqformat.format.methods import COMPRESSION_METHODS as METHODS
from vqformat.pillow_plugin import MIME_TYPE

SPEC = Path(__file__).resolve().parent.parent / "spec"
METHOD_NAMES = sorted(METHODS)


def run_file(*args: str) -> str:
    command = ["file", "-b", "-m", str(SPEC / "vqi.magic"), *args]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.skipif(shutil.which("file") is None, reason="file(1) is not installed")
@pytest.mark.parametrize("method", METHOD_NAMES)
@pytest.mark.parametrize(
    "channels, kind", [(1, "grey"), (2, "grey+alpha"), (3, "RGB"), (4, "RGBA")]
)
def test_libmagic_snippet_identifies_vqi(channels, kind, method, tmp_path):
    path = tmp_path / "picture.vqi"
    palette = np.zeros((20, channels), np.uint8)
    path.write_bytes(
        vqformat.encode_indexed(palette, np.zeros((6, 5), np.uint8), compression=method)
    )
    description = run_file(str(path))
    assert description.startswith(f"VQI image data, version 1, 5 x 6, {kind}, 20 colours, ")
    code = METHODS[method].code
    assert description.endswith((f", {method}", f", compression method {code}"))
    assert run_file("--mime-type", str(path)) == MIME_TYPE
    assert run_file("--extension", str(path)) == "vqi"
    Image.new("RGB", (2, 2)).save(tmp_path / "x.png")
    assert "VQI" not in run_file(str(tmp_path / "x.png"))


MIME_NS = {"mime": "http://www.freedesktop.org/standards/shared-mime-info"}


def test_shared_mime_info_definition_names_glob_and_signature():
    root = ElementTree.parse(SPEC / "vqi-mime.xml").getroot()
    (mime_type,) = root.findall("mime:mime-type", MIME_NS)
    assert mime_type.get("type") == MIME_TYPE
    assert [glob.get("pattern") for glob in mime_type.findall("mime:glob", MIME_NS)] == ["*.vqi"]
    (match,) = mime_type.findall("mime:magic/mime:match", MIME_NS)
    assert (match.get("type"), match.get("offset")) == ("string", "0")
    value = match.get("value").encode().decode("unicode_escape").encode("latin-1")
    assert value == SIGNATURE


@pytest.mark.skipif(
    shutil.which("update-mime-database") is None, reason="shared-mime-info is not installed"
)
def test_shared_mime_info_compiles_the_definition(tmp_path):
    (tmp_path / "packages").mkdir()
    shutil.copy(SPEC / "vqi-mime.xml", tmp_path / "packages")
    subprocess.run(["update-mime-database", str(tmp_path)], capture_output=True, check=True)
    assert "image/x-vqi:*.vqi" in (tmp_path / "globs").read_text().splitlines()
    assert (
        b"[50:image/x-vqi]\n>0=" + struct.pack(">H", 8) + SIGNATURE
        in (tmp_path / "magic").read_bytes()
    )
