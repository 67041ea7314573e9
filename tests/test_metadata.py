"""Metadata chunks (spec §3.3): colour profile, EXIF, XMP and text through the API,
Pillow and the CLI; damaged and hostile chunks."""

from __future__ import annotations

import functools
import io
import json
import struct
import subprocess
import sys
import tracemalloc
import warnings
import zlib
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms, PngImagePlugin

import vqformat
from vqformat.format.container import chunk_bytes
from vqformat.format.metadata import MAX_PROFILE_BYTES, MAX_TEXT_ENTRIES

VECTORS = Path(__file__).resolve().parent.parent / "spec" / "vectors"
SCRIPT = Path(sys.executable).with_name("vqi")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "vqformat.cli"]
ORIENTATION = 0x0112
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'


@functools.cache
def srgb_profile() -> bytes:
    """Little CMS's sRGB profile; cached, since its header holds the creation time."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def display_p3_like_profile() -> bytes:
    """An ICC v2 matrix/TRC display profile with Display P3's primaries (D50-adapted)
    and a 2.2 gamma, which Little CMS reads and transforms with."""
    description = b"Display P3 (test)\x00"
    tags = {
        b"desc": b"desc"
        + bytes(4)
        + struct.pack(">I", len(description))
        + description
        + bytes(4 + 4 + 2 + 1 + 67),
        b"wtpt": b"XYZ " + bytes(4) + _s15(0.9642) + _s15(1.0) + _s15(0.8249),
        b"rXYZ": b"XYZ " + bytes(4) + _s15(0.5151) + _s15(0.2412) + _s15(-0.0011),
        b"gXYZ": b"XYZ " + bytes(4) + _s15(0.2920) + _s15(0.6922) + _s15(0.0419),
        b"bXYZ": b"XYZ " + bytes(4) + _s15(0.1571) + _s15(0.0666) + _s15(0.7841),
        b"rTRC": b"curv" + bytes(4) + struct.pack(">IH", 1, 563) + bytes(2),
        b"cprt": b"text" + bytes(4) + b"No copyright\x00",
    }
    tags[b"gTRC"] = tags[b"bTRC"] = tags[b"rTRC"]
    table_size = 4 + 12 * len(tags)
    body, entries, offset = b"", b"", 128 + table_size
    for signature, data in tags.items():
        data += bytes(-len(data) % 4)
        entries += struct.pack(">4sII", signature, offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = struct.pack(">I4sI4s4s4s", size, b"none", 0x02100000, b"mntr", b"RGB ", b"XYZ ")
    header += bytes(12) + b"acsp" + bytes(4 + 4 + 4 + 4 + 8 + 4)
    header += _s15(0.9642) + _s15(1.0) + _s15(0.8249) + bytes(4 + 16 + 28)
    return header + struct.pack(">I", len(tags)) + entries + body


def real_exif(orientation: int = 6) -> Image.Exif:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[0x010F] = "VQI Camera"
    exif[0x0110] = "Model 1"
    exif[0x0131] = "vqi test"
    return exif


def photo(height: int = 24, width: int = 40) -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def all_metadata() -> dict:
    return {
        "icc_profile": display_p3_like_profile(),
        "exif": real_exif(),
        "xmp": XMP,
        "text": {"Title": "Ünïcödé title", "Comment": "long comment " * 200},
    }


def test_the_p3_profile_is_real():
    profile = ImageCms.ImageCmsProfile(io.BytesIO(display_p3_like_profile()))
    assert ImageCms.getProfileDescription(profile).strip() == "Display P3 (test)"
    transform = ImageCms.buildTransform(profile, ImageCms.createProfile("sRGB"), "RGB", "RGB")
    red = ImageCms.applyTransform(Image.new("RGB", (1, 1), (255, 0, 0)), transform)
    assert red.getpixel((0, 0))[0] == 255 and red.getpixel((0, 0))[1] < 40


# --- the API -----------------------------------------------------------------------


def test_encode_keeps_metadata_and_the_same_pixels():
    pixels = photo()
    data = vqformat.encode(pixels, 16, **all_metadata())
    metadata = vqformat.read_metadata(data)
    assert metadata.icc_profile == display_p3_like_profile()
    assert metadata.exif == real_exif().tobytes()[6:]  # stored without "Exif\0\0"
    assert metadata.xmp == XMP
    assert dict(metadata.text) == all_metadata()["text"]
    listed = vqformat.read_info(data, metadata=True).metadata
    assert listed == ("iCCP", "eXIf", "xMPt", "iTXt", "iTXt")
    assert vqformat.read_info(data).metadata is None  # the header alone
    assert np.array_equal(vqformat.decode(data), vqformat.decode(vqformat.encode(pixels, 16)))
    assert vqformat.read_info(vqformat.encode(pixels, 16), metadata=True).metadata == ()
    assert not vqformat.read_metadata(vqformat.encode(pixels, 16))


def test_save_and_write_indexed_take_metadata(tmp_path):
    metadata = vqformat.Metadata(icc_profile=srgb_profile(), exif=real_exif().tobytes())
    vqformat.save(tmp_path / "a.vqi", photo(), 8, icc_profile=srgb_profile(), exif=real_exif())
    data = vqformat.encode_indexed(
        np.zeros((2, 3), np.uint8), np.eye(4, dtype=int), metadata=metadata
    )
    assert vqformat.read_metadata(tmp_path / "a.vqi") == metadata
    assert vqformat.read_metadata(data) == metadata
    assert vqformat.decode_indexed(data)[1].tolist() == np.eye(4, dtype=int).tolist()


def test_exif_with_or_without_its_prefix_is_stored_alike():
    raw = real_exif().tobytes()
    assert raw.startswith(b"Exif\x00\x00")
    assert vqformat.Metadata(exif=raw) == vqformat.Metadata(exif=raw[6:])
    assert vqformat.Metadata(exif=real_exif()).exif == raw[6:]


@pytest.mark.parametrize(
    "keywords, message",
    [
        ({"text": {"": "empty key"}}, "text key"),
        ({"text": {"k" * 80: "long key"}}, "text key"),
        ({"text": {"a\x00b": "NUL"}}, "text key"),
        ({"text": {"k": 3}}, "text value"),
        ({"text": {"k": "\ud800"}}, "cannot be written as UTF-8"),
        ({"text": {str(i): "" for i in range(MAX_TEXT_ENTRIES + 1)}}, "at most"),
        ({"icc_profile": 12}, "icc_profile must be bytes"),
        ({"xmp": bytes(MAX_PROFILE_BYTES + 1)}, "exceeds"),
    ],
)
def test_bad_metadata_is_refused_before_encoding(keywords, message):
    with pytest.raises(vqformat.VQIError, match=message):
        vqformat.encode(photo(), 4, **keywords)


def profile_for(space: bytes) -> bytes:
    profile = bytearray(srgb_profile())
    profile[16:20] = space
    return bytes(profile)


@pytest.mark.parametrize(
    "pixels, space", [(photo(), b"CMYK"), (photo(), b"GRAY"), (photo()[..., 0], b"RGB ")]
)
def test_a_profile_for_other_samples_is_refused_before_fitting(pixels, space):
    with (
        mock.patch("vqformat.pipeline._fit") as fit,
        pytest.raises(vqformat.VQIError, match="cannot describe"),
    ):
        vqformat.encode(pixels, 4, icc_profile=profile_for(space))
    fit.assert_not_called()
    palette = np.zeros((2, 1 if pixels.ndim == 2 else 3), np.uint8)
    metadata = vqformat.Metadata(icc_profile=profile_for(space))
    with pytest.raises(vqformat.VQIError, match="cannot describe"):
        vqformat.write_indexed(io.BytesIO(), palette, np.zeros((2, 2), np.uint8), metadata=metadata)


def test_pillow_drops_an_image_s_own_profile_that_no_longer_fits_but_refuses_a_given_one():
    cmyk = Image.new("CMYK", (8, 6), (0, 80, 160, 20))
    cmyk.info["icc_profile"] = profile_for(b"CMYK")
    converted = cmyk.convert("RGB")  # Pillow keeps info, profile and all
    assert converted.info["icc_profile"] == profile_for(b"CMYK")
    out = io.BytesIO()
    converted.save(out, "VQI", exif=real_exif(1))
    metadata = vqformat.read_metadata(out.getvalue())
    assert metadata.icc_profile is None and metadata.exif is not None
    with pytest.raises(ValueError, match="cannot describe"):
        converted.save(io.BytesIO(), "VQI", icc_profile=profile_for(b"CMYK"))


@settings(max_examples=30, deadline=None)
@given(
    st.dictionaries(
        st.text(
            st.characters(exclude_characters="\x00", exclude_categories=["Cs"]),
            min_size=1,
            max_size=20,
        ),
        st.text(st.characters(exclude_categories=["Cs"]), max_size=300),
        max_size=5,
    )
)
def test_any_text_round_trips(text):
    data = vqformat.encode_indexed(
        np.zeros((1, 1), np.uint8), np.zeros((1, 1), int), metadata=vqformat.Metadata(text=text)
    )
    assert dict(vqformat.read_metadata(data).text) == text


# --- damaged and hostile chunks ------------------------------------------------------


def _file_with(*chunks: bytes) -> bytes:
    """A small valid file with these chunks inserted right after HEAD."""
    data = vqformat.encode_indexed(np.array([[0], [9]], np.uint8), np.array([[0, 1, 1]]))
    after_head = 8 + 12 + 20
    return data[:after_head] + b"".join(chunks) + data[after_head:]


def test_a_bad_crc_in_a_metadata_chunk_rejects_the_file():
    chunk = bytearray(chunk_bytes(b"eXIf", real_exif().tobytes()[6:]))
    chunk[12] ^= 1
    data = _file_with(bytes(chunk))
    for read in (vqformat.decode, vqformat.read_metadata, vqformat.verify):
        with pytest.raises(vqformat.VQIError, match="CRC mismatch in eXIf"):
            read(data)


@pytest.mark.parametrize(
    "chunk, reason",
    [
        (chunk_bytes(b"iCCP", b"\x01not zlib"), "bad zlib stream"),
        (chunk_bytes(b"iCCP", b"\x00" + srgb_profile()), "unknown compression flag"),
        (chunk_bytes(b"iCCP", b"\x01" + zlib.compress(b"abc")[:-2]), "truncated"),
        (chunk_bytes(b"iCCP", b"\x01" + zlib.compress(b"abc") + b"x"), "followed"),
        (chunk_bytes(b"iTXt", b"no separator"), "no NUL"),
        (chunk_bytes(b"iTXt", b"key\x00\x00\xff\xfe"), "not UTF-8"),
        (chunk_bytes(b"xMPt", b"\x05" + XMP), "unknown compression flag"),
    ],
)
def test_a_malformed_metadata_chunk_is_dropped_with_a_warning(chunk, reason):
    data = _file_with(chunk, chunk_bytes(b"iTXt", b"kept\x00\x00yes"))
    with pytest.warns(vqformat.MetadataWarning, match=reason):
        metadata = vqformat.read_metadata(data)
    assert metadata == vqformat.Metadata(text={"kept": "yes"})
    assert vqformat.decode(data).tolist() == [[0, 9, 9]]


def test_repeated_chunks_keep_the_first():
    first, second = real_exif(1).tobytes()[6:], real_exif(8).tobytes()[6:]
    data = _file_with(
        chunk_bytes(b"eXIf", first),
        chunk_bytes(b"eXIf", second),
        chunk_bytes(b"iTXt", b"k\x00\x00one"),
        chunk_bytes(b"iTXt", b"k\x00\x00two"),
    )
    with pytest.warns(vqformat.MetadataWarning) as caught:
        metadata = vqformat.read_metadata(data)
    assert len(caught) == 2
    assert {warning.filename for warning in caught} == {__file__}  # the caller's line
    assert (metadata.exif, dict(metadata.text)) == (first, {"k": "one"})


def _peak_bytes(read) -> int:
    tracemalloc.start()
    try:
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            read()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _bomb(size: int) -> bytes:
    """A zlib stream of ``size`` zero bytes, built without holding them."""
    packer, piece = zlib.compressobj(9), bytes(1 << 20)
    return b"".join(packer.compress(piece) for _ in range(size >> 20)) + packer.flush()


@pytest.mark.parametrize(
    "chunk_type, head", [(b"iCCP", b"\x01"), (b"xMPt", b"\x01"), (b"iTXt", b"k\x00\x01")]
)
def test_a_decompression_bomb_is_refused_within_bounded_memory(chunk_type, head):
    bomb = _bomb(1 << 30)  # 1 GiB of zeros in about 1 MB
    data = _file_with(chunk_bytes(chunk_type, head + bomb))
    with pytest.warns(vqformat.MetadataWarning, match="inflates to more than"):
        assert not vqformat.read_metadata(data)
    assert _peak_bytes(lambda: vqformat.read_metadata(data)) < 4 * len(data) + (4 << 20)


def test_repeated_chunks_cost_one_chunk_of_memory_not_all_of_them(tmp_path):
    """Each chunk is parsed as it is read: 40 text chunks of 1 MiB under one key keep
    one entry, and are never all held at once."""
    text = chunk_bytes(b"iTXt", b"k\x00\x00" + b"x" * (1 << 20))
    path = tmp_path / "repeats.vqi"
    path.write_bytes(_file_with(*[text] * 40))
    with pytest.warns(vqformat.MetadataWarning, match="a second text entry"):
        assert list(vqformat.read_metadata(path).text) == ["k"]
    assert _peak_bytes(lambda: vqformat.read_metadata(path)) < 8 << 20


def test_an_overlong_metadata_chunk_is_skipped_unread():
    data = _file_with(chunk_bytes(b"eXIf", bytes(MAX_PROFILE_BYTES + (1 << 20))))
    with pytest.warns(vqformat.MetadataWarning, match="longer than the limit"):
        assert not vqformat.read_metadata(data)
    assert _peak_bytes(lambda: vqformat.read_metadata(data)) < 4 << 20


def test_metadata_after_the_first_strip_is_ignored():
    data = vqformat.encode_indexed(np.zeros((2, 1), np.uint8), np.array([[0, 1]]))
    iend = len(data) - 12
    data = data[:iend] + chunk_bytes(b"iTXt", b"late\x00\x00x") + data[iend:]
    assert not vqformat.read_metadata(data)
    with Image.open(io.BytesIO(data)) as im:
        assert "late" not in im.info


# --- vectors -----------------------------------------------------------------------


def _vector(name: str) -> tuple[bytes, dict]:
    return (VECTORS / f"{name}.vqi").read_bytes(), json.loads(
        (VECTORS / f"{name}.json").read_text()
    )


def _expected_metadata(described: dict) -> vqformat.Metadata:
    return vqformat.Metadata(
        icc_profile=bytes.fromhex(described.get("icc_profile", "")) or None,
        exif=bytes.fromhex(described.get("exif", "")) or None,
        xmp=described.get("xmp", "").encode() or None,
        text=described.get("text", {}),
    )


@pytest.mark.parametrize("name", ["meta-iccp", "meta-exif", "meta-xmpt", "meta-itxt"])
def test_metadata_vectors_read_and_write_exactly(name):
    data, expected = _vector(name)
    metadata = _expected_metadata(expected["metadata"])
    assert vqformat.read_metadata(data) == metadata
    assert vqformat.decode(data).tolist() == expected["pixels"]
    written = vqformat.encode_indexed(
        np.array(expected["palette"], dtype=np.uint8),
        np.array(expected["indices"]),
        compression=expected["compression"],
        strip_rows=expected["strip_rows"],
        metadata=metadata,
    )
    assert written == data


def test_the_dropped_metadata_vector():
    data, expected = _vector("meta-dropped")
    with pytest.warns(vqformat.MetadataWarning) as caught:
        metadata = vqformat.read_metadata(data)
    assert len(caught) == expected["dropped"]
    assert metadata == _expected_metadata(expected["metadata"])
    assert vqformat.decode(data).tolist() == expected["pixels"]


# --- Pillow --------------------------------------------------------------------------


def test_pillow_save_keywords_and_open_info():
    out = io.BytesIO()
    Image.fromarray(photo()).save(out, "VQI", colors=16, **all_metadata())
    out.seek(0)
    with Image.open(out) as im:  # all of it is there before load()
        assert im.info["icc_profile"] == display_p3_like_profile()
        assert im.info["exif"].startswith(b"Exif\x00\x00")
        assert im.getexif()[ORIENTATION] == 6 and im.getexif()[0x010F] == "VQI Camera"
        assert im.info["xmp"] == XMP
        assert im.info["Title"] == "Ünïcödé title" and im.text == all_metadata()["text"]
        assert im.size == (40, 24)
        im.load()


def test_pillow_keeps_a_png_s_metadata_and_keywords_replace_it():
    png = io.BytesIO()
    text = PngImagePlugin.PngInfo()
    text.add_text("Author", "someone")
    Image.fromarray(photo()).save(
        png, "PNG", icc_profile=srgb_profile(), exif=real_exif(3), pnginfo=text
    )
    png.seek(0)
    with Image.open(png) as source:
        kept, replaced = io.BytesIO(), io.BytesIO()
        source.save(kept, "VQI", colors=8)
        source.save(replaced, "VQI", colors=8, icc_profile=display_p3_like_profile(), exif=b"")
    with Image.open(kept) as im:
        assert im.info["icc_profile"] == srgb_profile()
        assert im.getexif()[ORIENTATION] == 3
        assert im.text == {"Author": "someone"}
    metadata = vqformat.read_metadata(replaced.getvalue())
    assert metadata.icc_profile == display_p3_like_profile() and metadata.exif is None


def test_pillow_opens_a_file_with_malformed_metadata_and_warns():
    data = _file_with(chunk_bytes(b"iCCP", b"\x01" + _bomb(64 << 20)))
    with pytest.warns(vqformat.MetadataWarning), Image.open(io.BytesIO(data)) as im:
        assert "icc_profile" not in im.info
        assert np.asarray(im.convert("L")).shape == (1, 3)


# --- the command line --------------------------------------------------------------


def vqi(*args) -> subprocess.CompletedProcess:
    return subprocess.run([*COMMAND, *map(str, args)], capture_output=True, timeout=120, check=True)


@pytest.fixture
def tagged_png(tmp_path) -> Path:
    """A portrait photo stored landscape with EXIF orientation 6, a P3 profile and text."""
    path = tmp_path / "in.png"
    text = PngImagePlugin.PngInfo()
    text.add_itxt("Title", "Ünïcödé")
    image = Image.fromarray(photo())
    image.save(path, icc_profile=display_p3_like_profile(), exif=real_exif(6), pnginfo=text)
    return path


def test_cli_encode_keeps_metadata_and_does_not_rotate(tagged_png, tmp_path):
    vqi("encode", "-k", "16", tagged_png, "-o", tmp_path / "out.vqi")
    metadata = vqformat.read_metadata(tmp_path / "out.vqi")
    assert metadata.icc_profile == display_p3_like_profile()
    assert dict(metadata.text) == {"Title": "Ünïcödé"}
    exif = Image.Exif()
    exif.load(metadata.exif)
    assert exif[ORIENTATION] == 6
    assert vqformat.read_info(tmp_path / "out.vqi").width == 40  # not transposed


def test_cli_encode_strip_drops_metadata(tagged_png, tmp_path):
    vqi("encode", "--strip", "-k", "16", tagged_png, "-o", tmp_path / "out.vqi")
    assert not vqformat.read_metadata(tmp_path / "out.vqi")


@pytest.mark.parametrize("suffix", [".png", ".webp", ".tiff", ".jpg"])
def test_cli_decode_writes_metadata(tmp_path, suffix):
    source = tmp_path / "in.vqi"
    vqformat.save(source, photo(), 16, **all_metadata())
    target = tmp_path / f"out{suffix}"
    vqi("decode", source, "-o", target, *(["--lossy"] if suffix == ".jpg" else []))
    with Image.open(target) as im:
        assert im.info["icc_profile"] == display_p3_like_profile()
        assert im.getexif()[ORIENTATION] == 6
        if suffix in (".png", ".webp", ".jpg"):
            assert XMP in (
                im.info["xmp"] if isinstance(im.info["xmp"], bytes) else im.info["xmp"].encode()
            )
        if suffix == ".png":
            assert im.text["Title"] == "Ünïcödé title"


def test_cli_info_lists_metadata(tmp_path):
    source = tmp_path / "in.vqi"
    vqformat.save(source, photo(), 16, **all_metadata())
    listed = json.loads(vqi("info", "--json", source).stdout)[0]["metadata"]
    assert listed["icc_profile"] == {
        "bytes": len(display_p3_like_profile()),
        "description": "Display P3 (test)",
    }
    assert listed["exif"] == {"bytes": len(real_exif().tobytes()) - 6}
    assert listed["xmp"] == {"bytes": len(XMP)}
    assert listed["text"] == ["Title", "Comment"]
    text = vqi("info", source).stdout.decode()
    assert "icc profile   'Display P3 (test)'" in text and "text          Title, Comment" in text


def test_cli_encode_drops_a_profile_that_no_longer_fits(tmp_path):
    """A CMYK JPEG's pixels are stored as RGB, so its CMYK profile would mislead."""
    cmyk_profile = bytearray(srgb_profile())
    cmyk_profile[16:20] = b"CMYK"
    source = tmp_path / "print.jpg"
    Image.new("CMYK", (8, 6), (0, 80, 160, 20)).save(
        source, icc_profile=bytes(cmyk_profile), exif=real_exif(1)
    )
    vqi("encode", source, "-o", tmp_path / "out.vqi")
    metadata = vqformat.read_metadata(tmp_path / "out.vqi")
    assert metadata.icc_profile is None and metadata.exif is not None
    assert vqformat.read_info(tmp_path / "out.vqi").mode == "RGB"


def test_cli_encode_drops_only_what_a_vqi_file_cannot_hold(tmp_path):
    source = tmp_path / "in.png"
    text = PngImagePlugin.PngInfo()
    text.add_text("é" * 79, "a Latin-1 key of 158 UTF-8 bytes")
    text.add_text("Author", "someone")
    Image.fromarray(photo()).save(source, pnginfo=text, icc_profile=srgb_profile())
    vqi("encode", source, "-o", tmp_path / "out.vqi")
    metadata = vqformat.read_metadata(tmp_path / "out.vqi")
    assert dict(metadata.text) == {"Author": "someone"}
    assert metadata.icc_profile == srgb_profile()


def test_pillow_open_warns_at_the_callers_line(tmp_path):
    path = tmp_path / "bad-text.vqi"
    path.write_bytes(_file_with(chunk_bytes(b"iTXt", b"no separator")))
    with pytest.warns(vqformat.MetadataWarning, match="no NUL") as caught:
        Image.open(path).load()
    assert caught[0].filename == __file__
