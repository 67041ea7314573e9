"""The Pillow plugin: .vqi opens and saves through PIL.Image like PNG or GIF."""

import contextlib
import io
import json
import subprocess
import sys
import warnings
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from helpers import repair_crcs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile, UnidentifiedImageError

import vqformat
from vqformat.format.container import CHANNEL_MODES, SIGNATURE, Header, Writer
from vqformat.format.methods import COMPRESSION_METHODS as METHODS
from vqformat.pillow_plugin import MIME_TYPE

SPEC = Path(__file__).resolve().parent.parent / "spec"
VECTORS = sorted((SPEC / "vectors").glob("*.vqi"))
METHOD_NAMES = sorted(METHODS)
HEAD_END = 8 + 8 + 20 + 4  # signature, then HEAD's length, type, data and CRC
BROKEN = (OSError, SyntaxError, ValueError)  # UnidentifiedImageError is an OSError
PALETTE_MODE = {3: "RGB", 4: "RGBA"}


def open_bytes(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def saved(im: Image.Image, **options) -> bytes:
    out = io.BytesIO()
    im.save(out, format="VQI", **options)
    return out.getvalue()


def expected_mode(channels: int, colors: int) -> str:
    return "P" if channels >= 3 and colors <= 256 else CHANNEL_MODES[channels]


def assert_opens_as_stored(im: Image.Image, palette: np.ndarray, indices: np.ndarray) -> None:
    """Mode, palette, indices and pixels are those of the file, as vqformat.decode gives."""
    channels = palette.shape[1]
    assert im.mode == expected_mode(channels, len(palette))
    pixels = palette[indices]
    if channels == 1:
        pixels = pixels[..., 0]
    if im.mode == "P":
        assert im.palette.mode == PALETTE_MODE[channels]
        assert np.array_equal(np.asarray(im), indices)
        assert im.getpalette(im.palette.mode) == palette.ravel().tolist()
        im = im.convert(im.palette.mode)
    assert np.array_equal(np.asarray(im), pixels)


@st.composite
def indexed_files(draw):
    """A palette of k entries (repeats allowed, as the format allows) and indices."""
    channels = draw(st.integers(1, 4))
    colors = draw(st.sampled_from([1, 2, 3, 16, 255, 256, 257, 300]))
    height, width = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    palette = rng.integers(0, 256, size=(colors, channels), dtype=np.uint8)
    indices = rng.integers(0, colors, size=(height, width))
    options = {
        "compression": draw(st.sampled_from(METHOD_NAMES)),
        "strip_rows": draw(st.integers(1, height)),
    }
    return palette, indices, options


# --- opening ----------------------------------------------------------------


@pytest.mark.parametrize("path", VECTORS, ids=lambda path: path.name)
def test_reference_vectors_open_with_their_mode_palette_and_pixels(path):
    expected = json.loads(path.with_suffix(".json").read_text())
    palette = np.array(expected["palette"], dtype=np.uint8)
    with Image.open(path) as im:
        assert im.format == "VQI"
        assert im.size == (expected["width"], expected["height"])
        assert_opens_as_stored(im, palette, np.array(expected["indices"]))


@settings(max_examples=60, deadline=None)
@given(indexed_files())
def test_files_of_every_kind_open_as_stored(case):
    palette, indices, options = case
    data = vqformat.encode_indexed(palette, indices, **options)
    with open_bytes(data) as im:
        assert im.info == {"compression": options["compression"], "colors": len(palette)}
        assert_opens_as_stored(im, palette, indices)
        assert im.get_format_mimetype() == MIME_TYPE


def test_open_reads_only_the_header_and_palette():
    """size, mode, palette and info come from HEAD and PLTE; the pixels after them may be junk."""
    palette = np.arange(12, dtype=np.uint8).reshape(4, 3)
    data = vqformat.encode_indexed(palette, np.zeros((6, 5), dtype=np.uint8))
    palette_end = HEAD_END + 12 + palette.size
    for tail in (b"", b"garbage" * 100):
        with open_bytes(data[:palette_end] + tail) as im:
            assert (im.mode, im.size, im.info["colors"]) == ("P", (5, 6), 4)
            assert im.palette.mode == "RGB"
            assert bytes(im.palette.palette) == palette.tobytes()
            with pytest.raises(OSError, match="broken VQI file"):
                im.load()


@pytest.mark.parametrize("channels, colors", [(1, 3), (2, 300), (3, 257), (4, 1000)])
def test_open_of_a_non_palette_mode_needs_only_the_header(channels, colors):
    palette = np.zeros((colors, channels), dtype=np.uint8)
    data = vqformat.encode_indexed(palette, np.zeros((4, 3), dtype=np.uint16))
    with open_bytes(data[:HEAD_END]) as im:
        assert (im.mode, im.size) == (CHANNEL_MODES[channels], (3, 4))
        with pytest.raises(OSError, match="ends inside"):
            im.load()


class ReadTracker(io.BytesIO):
    """Records the furthest byte any read reached, and where each read started."""

    furthest = 0

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.starts: list[int] = []

    def read(self, size=-1):
        self.starts.append(self.tell())
        data = super().read(size)
        self.furthest = max(self.furthest, self.tell())
        return data


def test_open_reads_no_byte_past_the_first_strip_header():
    """Opening reads the metadata chunks (spec 3.3), which end at the first IDAT."""
    data = vqformat.encode_indexed(np.zeros((300, 3), np.uint8), np.zeros((64, 64), np.uint16))
    stream = ReadTracker(data)
    with Image.open(stream) as im:
        assert im.mode == "RGB"
        assert stream.furthest == HEAD_END + 12 + 900 + 8
        stream.starts.clear()
        im.load()
    assert stream.furthest == len(data)
    assert min(stream.starts) == HEAD_END + 12 + 900 + 8  # HEAD and PLTE are read once


@pytest.mark.parametrize("mode", ["L", "P"])
def test_a_file_damaged_before_its_first_idat_opens_and_fails_on_load(mode):
    channels = 1 if mode == "L" else 3
    data = vqformat.encode_indexed(np.zeros((4, channels), np.uint8), np.zeros((8, 8), np.uint8))
    cut = data[: HEAD_END + 12 + 4 * channels + 4]  # inside the first IDAT's prefix
    with Image.open(io.BytesIO(cut)) as im:
        assert im.mode == mode
        with pytest.raises(OSError, match="broken VQI file"):
            im.load()


def test_strips_decode_into_their_rows():
    rng = np.random.default_rng(7)
    palette = rng.integers(0, 256, size=(300, 3), dtype=np.uint8)
    indices = rng.integers(0, 300, size=(23, 11))
    data = vqformat.encode_indexed(palette, indices, strip_rows=4)
    with open_bytes(data) as im:
        assert np.array_equal(np.asarray(im), palette[indices])


# --- saving -----------------------------------------------------------------


@st.composite
def few_colour_images(draw, modes=("1", "L", "LA", "RGB", "RGBA", "P", "PA")):
    """An image of a given mode with at most 81 distinct colours: saving must be exact."""
    mode = draw(st.sampled_from(modes))
    height, width = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    levels = np.array([0, 77, 200], dtype=np.uint8)
    rgba = levels[rng.integers(0, 3, size=(height, width, 4))]
    return Image.fromarray(rgba, "RGBA").convert(mode)


def as_saved_mode(im: Image.Image) -> Image.Image:
    """The image in the mode whose pixels a .vqi file must reproduce exactly."""
    return im.convert({"1": "L", "P": "RGBA", "PA": "RGBA"}.get(im.mode, im.mode))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(few_colour_images(), st.sampled_from(METHOD_NAMES))
def test_every_save_mode_round_trips_its_pixels(case, method):
    im = case
    with open_bytes(saved(im, compression=method)) as back:
        expected = as_saved_mode(im)
        grey = expected.mode in ("L", "LA")
        assert back.mode == (expected.mode if grey else "P")
        assert np.array_equal(np.asarray(back.convert(expected.mode)), np.asarray(expected))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 256), st.booleans(), st.integers(0, 2**32 - 1))
def test_palette_images_are_stored_losslessly(entries, with_alpha, seed):
    rng = np.random.default_rng(seed)
    palette = rng.integers(0, 256, size=(entries, 4 if with_alpha else 3), dtype=np.uint8)
    indices = rng.integers(0, entries, size=(7, 9)).astype(np.uint8)
    im = Image.fromarray(indices, "P")
    im.putpalette(palette.tobytes(), "RGBA" if with_alpha else "RGB")
    data = saved(im)
    stored_palette, stored = vqformat.decode_indexed(data)
    assert np.array_equal(stored_palette, palette)
    assert np.array_equal(stored, indices)
    with open_bytes(data) as back:
        assert back.palette.mode == im.palette.mode
        assert back.getpalette(back.palette.mode) == im.getpalette(im.palette.mode)
        assert np.array_equal(np.asarray(back), indices)


def test_png8_and_gif_transparency_becomes_palette_alpha(tmp_path):
    im = Image.fromarray(np.array([[0, 1, 2, 3]], dtype=np.uint8), "P")
    im.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9])
    for name, transparency in (("a.png", b"\x00\x80\xff\x28"), ("b.gif", 2)):
        im.save(tmp_path / name, transparency=transparency)
        with Image.open(tmp_path / name) as source:
            data = saved(source)
            expected = np.asarray(source.convert("RGBA"))
        assert vqformat.read_info(data).channels == 4
        with open_bytes(data) as back:
            assert np.array_equal(np.asarray(back.convert("RGBA")), expected)


def test_indices_past_the_palette_end_keep_rendering_black():
    im = Image.fromarray(np.array([[0, 1, 5]], dtype=np.uint8), "P")
    im.putpalette([10, 20, 30, 40, 50, 60])
    with open_bytes(saved(im)) as back:
        assert back.info["colors"] == 6
        assert np.array_equal(np.asarray(back), np.asarray(im))
        assert np.array_equal(np.asarray(back.convert("RGB")), np.asarray(im.convert("RGB")))


def test_optimize_drops_unused_palette_entries():
    im = Image.fromarray(np.array([[7, 200], [200, 31]], dtype=np.uint8), "P")
    im.putpalette(np.random.default_rng(1).integers(0, 256, 768, dtype=np.uint8).tobytes())
    with open_bytes(saved(im, optimize=True)) as back:
        assert back.info["colors"] == 3
        assert np.array_equal(np.asarray(back), [[0, 2], [2, 1]])
        assert np.array_equal(np.asarray(back.convert("RGB")), np.asarray(im.convert("RGB")))


def test_colors_below_a_palette_size_requantizes():
    indices = np.arange(64, dtype=np.uint8).reshape(8, 8)
    im = Image.fromarray(indices, "P")
    im.putpalette(np.repeat(np.arange(0, 256, 4, dtype=np.uint8), 3).tobytes())
    assert vqformat.read_info(saved(im)).colors == 64
    assert vqformat.read_info(saved(im, colors=8, method="kmeans")).colors <= 8


def test_save_writes_what_the_codec_writes():
    """Options reach the encoder: the file equals vqformat.encode's with the same options."""
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, size=(20, 30, 3), dtype=np.uint8)
    options = {"colors": 6, "method": "kmeans", "seed": 5, "strip_rows": 7}
    for method in METHOD_NAMES:
        data = saved(Image.fromarray(pixels), compression=method, **options)
        assert data == vqformat.encode(pixels, compression=method, **options)
        info = vqformat.read_info(data)
        assert (info.compression, info.strip_rows, info.colors) == (method, 7, 6)


def test_more_than_256_colours_open_as_rgb():
    rng = np.random.default_rng(4)
    pixels = rng.integers(0, 256, size=(20, 20, 3), dtype=np.uint8)
    with open_bytes(saved(Image.fromarray(pixels), colors=400)) as back:
        assert back.mode == "RGB"
        assert back.info["colors"] == 400
        assert np.array_equal(np.asarray(back), pixels)


def test_colour_key_transparency_becomes_alpha():
    im = Image.fromarray(np.array([[1, 2], [3, 1]], dtype=np.uint8), "L")
    im.info["transparency"] = 1
    with open_bytes(saved(im)) as back:
        assert back.mode == "LA"
        assert np.array_equal(np.asarray(back)[..., 1], [[0, 255], [255, 0]])


@pytest.mark.parametrize("mode", ["F", "I", "I;16", "CMYK", "YCbCr", "HSV"])
def test_modes_without_8_bit_samples_are_refused(mode, tmp_path):
    target = tmp_path / "x.vqi"
    with pytest.raises(ValueError, match=f"cannot write mode {mode} as VQI"):
        Image.new(mode, (3, 2)).save(target)
    assert not target.exists()


def test_save_options_dither_and_min_psnr(tmp_path):
    ramp = np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 3, axis=2).repeat(8, axis=0)
    image = Image.fromarray(ramp)
    with open_bytes(saved(image, colors=4, dither=True)) as back:
        dithered = np.asarray(back.convert("RGB"))
    with open_bytes(saved(image, colors=4)) as back:
        plain = np.asarray(back.convert("RGB"))
    assert len(np.unique(dithered[:, 75:120])) > len(np.unique(plain[:, 75:120])) == 1
    with open_bytes(saved(image, colors=256, min_psnr=30)) as back:
        assert len(back.getpalette()) // 3 < 64
    target = tmp_path / "x.vqi"
    with pytest.raises(ValueError, match="strength"):
        Image.new("RGBA", (3, 2)).save(target, colors=2, dither=2)
    assert not target.exists()


@pytest.mark.parametrize(
    "option",
    [
        {"compression": "zstd9"},
        {"method": "median-cut-ish"},
        {"colors": 0},
        {"colors": 70000},
        {"colors": "many"},
        {"colors": True},
        {"seed": -1},
        {"strip_rows": 0},
        {"strip_rows": 99},
        {"min_psnr": 0},
        {"min_psnr": "high"},
    ],
)
def test_bad_save_options_are_value_errors(option, tmp_path):
    target = tmp_path / "x.vqi"
    with pytest.raises(ValueError):
        Image.new("RGB", (3, 2)).save(target, **option)
    assert not target.exists()


def failing_save(failure: str) -> tuple[contextlib.ExitStack, dict]:
    """The context a save fails in, and its keywords: a bad option, or an error part-way."""
    stack = contextlib.ExitStack()
    if failure == "bad option":
        stack.enter_context(pytest.raises(ValueError))
        return stack, {"colors": 0}
    error = MemoryError if failure == "failed encode" else KeyboardInterrupt
    stack.enter_context(pytest.raises(error))
    stack.enter_context(mock.patch("vqformat.pillow_plugin.write_indexed", side_effect=error))
    return stack, {}


@pytest.mark.parametrize("by", ["extension", "format"])
@pytest.mark.parametrize("failure", ["bad option", "failed encode", "interrupt"])
def test_failed_save_leaves_an_existing_file_as_it_was(tmp_path, by, failure):
    target = tmp_path / ("keep.vqi" if by == "extension" else "keep.bin")
    target.write_bytes(b"precious")
    target.chmod(0o600)
    naming = {"format": "VQI"} if by == "format" else {}
    image = Image.new("RGB", (40, 30), (9, 8, 7))
    context, keywords = failing_save(failure)
    with context:
        image.save(target, **naming, **keywords)
    assert target.read_bytes() == b"precious"
    assert sorted(path.name for path in tmp_path.iterdir()) == [target.name]
    image.save(target, **naming)
    assert np.array_equal(vqformat.decode(target), np.asarray(image))
    assert target.stat().st_mode & 0o777 == 0o600


def test_saving_over_the_file_it_was_opened_from(tmp_path):
    target = tmp_path / "same.vqi"
    Image.new("RGB", (40, 30), (9, 8, 7)).save(target)
    with Image.open(target) as image:
        image.save(target, colors=1)
    assert vqformat.read_info(target).colors == 1


def test_other_formats_are_saved_by_pillow_as_before(tmp_path):
    image = Image.new("RGB", (4, 3), (1, 2, 3))
    image.save(tmp_path / "x.png")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    assert (tmp_path / "x.png").read_bytes() == buffer.getvalue()
    vqformat.register_vqi_opener()  # again: wraps Image.save once
    assert not getattr(Image.Image.save.__wrapped__, "saves_vqi_atomically", False)


def test_options_of_other_formats_are_ignored():
    data = saved(Image.new("L", (3, 2), 9), quality=80, lossless=True)
    assert np.array_equal(vqformat.decode(data), np.full((2, 3), 9))


# --- verify -----------------------------------------------------------------


def idat_payload_offset(data: bytes) -> int:
    """Offset of the first IDAT's data."""
    return data.index(b"IDAT") + 4


def test_verify_accepts_a_good_file_and_catches_a_flipped_payload_byte():
    rng = np.random.default_rng(5)
    data = vqformat.encode_indexed(
        rng.integers(0, 256, (16, 3), dtype=np.uint8), rng.integers(0, 16, (8, 8))
    )
    with open_bytes(data) as im:
        im.verify()
    for offset in range(idat_payload_offset(data), len(data) - 12):
        damaged = bytearray(data)
        damaged[offset] ^= 0x10
        with open_bytes(bytes(damaged)) as im, pytest.raises(SyntaxError, match="CRC mismatch"):
            im.verify()


def test_verify_does_not_decode_pixels():
    """A strip that is not valid deflate but carries a correct CRC passes verify, fails load."""
    header = Header(4, 2, 3, 2, METHODS["deflate"].code, 2)
    out = io.BytesIO()
    writer = Writer(out, header, bytes(6))
    writer.write_strip(b"not a zlib stream")
    writer.close()
    with open_bytes(out.getvalue()) as im:
        im.verify()
    with open_bytes(out.getvalue()) as im, pytest.raises(OSError, match="corrupt deflate"):
        im.load()


# --- limits and errors ------------------------------------------------------


def bomb_outcomes(path: Path) -> list[str]:
    """What Image.open does with the file: the warnings' and the error's messages."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            Image.open(path).close()
        except Image.DecompressionBombError as error:
            return ["error", str(error)]
    return [f"{w.category.__name__}: {w.message}" for w in caught]


@pytest.mark.parametrize("size", [(9, 9), (11, 10), (21, 10)])
def test_the_decompression_bomb_guard_acts_as_for_png(size, tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    Image.new("L", size).save(tmp_path / "x.png")
    Image.new("L", size).save(tmp_path / "x.vqi")
    assert bomb_outcomes(tmp_path / "x.vqi") == bomb_outcomes(tmp_path / "x.png")


def test_a_huge_declared_size_is_refused_before_allocating():
    header = Header(2**31 - 1, 2**31 - 1, 3, 2, 0, 1)
    chunks = [(b"HEAD", header.to_bytes()), (b"PLTE", bytes(6))]
    data = SIGNATURE + b"".join(vqformat.format.container.chunk_bytes(*chunk) for chunk in chunks)
    with pytest.raises(Image.DecompressionBombError):
        open_bytes(data)


def test_a_non_vqi_file_is_unidentified_and_other_formats_keep_their_plugin(tmp_path):
    with pytest.raises(UnidentifiedImageError):
        open_bytes(b"this is not an image at all")
    Image.new("RGB", (3, 2), (1, 2, 3)).save(tmp_path / "x.png")
    Image.new("L", (3, 2), 5).save(tmp_path / "x.vqi")
    (tmp_path / "png-named.vqi").write_bytes((tmp_path / "x.png").read_bytes())
    (tmp_path / "vqi-named.png").write_bytes((tmp_path / "x.vqi").read_bytes())
    for name, fmt in [("x.png", "PNG"), ("png-named.vqi", "PNG"), ("vqi-named.png", "VQI")]:
        with Image.open(tmp_path / name) as im:
            assert im.format == fmt
            im.load()


def test_broken_headers_are_unidentified():
    data = vqformat.encode_indexed(np.zeros((2, 3), np.uint8), np.zeros((2, 2), np.uint8))
    bad_crc = data[: HEAD_END - 1] + bytes([data[HEAD_END - 1] ^ 1]) + data[HEAD_END:]
    head = bytearray(data[16:36])
    head[3] = 250  # a compression method this decoder does not know
    newer = (
        SIGNATURE + vqformat.format.container.chunk_bytes(b"HEAD", bytes(head)) + data[HEAD_END:]
    )
    for broken in (data[:20], bad_crc, newer):
        with pytest.raises(UnidentifiedImageError):
            open_bytes(broken)


def open_and_load(data: bytes) -> None:
    with open_bytes(data) as im:
        im.load()


@pytest.mark.parametrize("colors", [5, 300])
def test_every_truncation_is_a_clean_error(colors):
    rng = np.random.default_rng(colors)
    data = vqformat.encode_indexed(
        rng.integers(0, 256, (colors, 3), dtype=np.uint8), rng.integers(0, colors, (5, 4))
    )
    for end in range(len(data)):
        with pytest.raises(BROKEN):
            open_and_load(data[:end])


@pytest.mark.parametrize("method", sorted(METHODS))
def test_load_truncated_images_keeps_the_intact_strips(method):
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
    data = vqformat.encode(pixels, 16, compression=method, strip_rows=4)
    _, whole = vqformat.decode_indexed(data)
    cut = data[: data.index(b"IDAT", data.index(b"IDAT", data.index(b"IDAT") + 1) + 1) + 20]
    with pytest.raises(OSError, match="broken VQI file"):
        open_and_load(cut)
    with mock.patch.object(ImageFile, "LOAD_TRUNCATED_IMAGES", True), open_bytes(cut) as im:
        assert im.mode == "P"
        partial = np.asarray(im)
    assert np.array_equal(partial[:8], whole[:8])  # the two strips before the cut
    assert not partial[8:].any()  # index 0, as a truncated PNG-8 leaves it


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_damaged_files_load_or_fail_cleanly(data):
    """Random byte changes, with or without matching CRCs: a clean error or an image."""
    palette, indices, options = data.draw(indexed_files())
    damaged = bytearray(vqformat.encode_indexed(palette, indices, **options))
    for _ in range(data.draw(st.integers(1, 3))):
        damaged[data.draw(st.integers(0, len(damaged) - 1))] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        damaged = repair_crcs(damaged)
    with (
        mock.patch.object(Image, "MAX_IMAGE_PIXELS", 10_000),
        warnings.catch_warnings(),
        contextlib.suppress(*BROKEN, Image.DecompressionBombError),
    ):
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        open_and_load(bytes(damaged))


# --- sources, registration, other tools ------------------------------------


def test_paths_file_objects_and_bytesio(tmp_path):
    im = Image.fromarray(np.arange(12, dtype=np.uint8).reshape(3, 4) * 20)
    im.save(tmp_path / "by-extension.vqi")
    with open(tmp_path / "by-format.bin", "wb") as out:
        im.save(out, format="VQI")
    files = [tmp_path / "by-extension.vqi", str(tmp_path / "by-format.bin")]
    assert (tmp_path / "by-extension.vqi").read_bytes() == saved(im)
    with open(files[0], "rb") as stream:
        sources = [*files, stream, io.BytesIO(saved(im))]
        for source in sources:
            with Image.open(source) as back:
                assert np.array_equal(np.asarray(back), np.asarray(im))


def test_incremental_parser_gives_the_size_early_and_the_image_on_close():
    rng = np.random.default_rng(8)
    palette = rng.integers(0, 256, (40, 3), dtype=np.uint8)
    indices = rng.integers(0, 40, (30, 20))
    data = vqformat.encode_indexed(palette, indices)
    palette_end = HEAD_END + 12 + palette.size
    parser = ImageFile.Parser()
    parser.feed(data[:palette_end])
    assert parser.image.size == (20, 30)
    for start in range(palette_end, len(data), 50):
        parser.feed(data[start : start + 50])
    assert_opens_as_stored(parser.close(), palette, indices)


def test_registration_is_idempotent_and_complete():
    vqformat.register_vqi_opener()
    vqformat.register_vqi_opener()
    Image.init()
    assert Image.ID.count("VQI") == 1
    assert Image.registered_extensions()[".vqi"] == "VQI"
    assert Image.MIME["VQI"] == MIME_TYPE
    assert "VQI" in Image.SAVE


def test_import_vqformat_alone_registers_the_plugin(tmp_path):
    Image.new("RGB", (2, 2), (9, 8, 7)).save(tmp_path / "x.vqi")
    script = (
        "import sys, vqformat\n"
        "from PIL import Image\n"
        "im = Image.open(sys.argv[1])\n"
        "print(im.format, im.mode, im.convert('RGB').getpixel((1, 1)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "x.vqi")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split() == ["VQI", "P", "(9,", "8,", "7)"]


def test_imageio_reads_vqi_through_pillow(tmp_path):
    iio = pytest.importorskip("imageio.v3")
    rng = np.random.default_rng(6)
    cases = {
        "grey": (rng.integers(0, 256, (5, 1), dtype=np.uint8), 5),
        "rgb-palette": (rng.integers(0, 256, (7, 3), dtype=np.uint8), 7),
        "rgba-palette": (rng.integers(0, 256, (9, 4), dtype=np.uint8), 9),
        "rgb": (rng.integers(0, 256, (300, 3), dtype=np.uint8), 300),
    }
    for name, (palette, colors) in cases.items():
        path = tmp_path / f"{name}.vqi"
        path.write_bytes(vqformat.encode_indexed(palette, rng.integers(0, colors, (6, 4))))
        assert np.array_equal(iio.imread(path), vqformat.decode(path)), name
