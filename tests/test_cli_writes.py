"""Issue #17: nothing lost, nothing silent. Each scenario drives the real console script."""

from __future__ import annotations

import os
import resource
import signal
import stat
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_cli import COMMAND, errors, few_colour_pixels, leftovers, vqi

import vqformat
from vqformat.cli.jobs import ExitStatus


def noise(height: int = 120, width: int = 160, channels: int = 3, seed: int = 0) -> np.ndarray:
    shape = (height, width, channels) if channels > 1 else (height, width)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.fixture
def rgba_vqi(tmp_path: Path) -> Path:
    pixels = few_colour_pixels()
    alpha = np.where(pixels[..., 0] > 100, 255, 60).astype(np.uint8)[..., None]
    path = tmp_path / "rgba.vqi"
    path.write_bytes(vqformat.encode(np.concatenate([pixels, alpha], axis=2), 16))
    return path


@pytest.fixture
def rgb_vqi(tmp_path: Path) -> Path:
    path = tmp_path / "rgb.vqi"
    path.write_bytes(vqformat.encode(few_colour_pixels(300, 300), 8))
    return path


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 64 KiB tmpfs, or a skip where mounting is not allowed."""
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield folder
    subprocess.run(["umount", str(folder)], check=False)


def run_into(stdout_path: Path | str, *args: str | Path) -> subprocess.CompletedProcess:
    with open(stdout_path, "wb") as out:
        return subprocess.run(
            [*COMMAND, *map(str, args)], stdout=out, stderr=subprocess.PIPE, timeout=120
        )


# --- standard output -----------------------------------------------------------------------


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_full_standard_output_is_exit_16(rgb_vqi):
    result = run_into("/dev/full", "decode", rgb_vqi, "-o", "-")
    assert result.returncode == ExitStatus.UNWRITABLE
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and "No space left" in lines[0]


def test_short_write_to_a_full_disk_is_exit_16(rgb_vqi, small_disk):
    result = run_into(small_disk / "out.tiff", "decode", rgb_vqi, "--format", "tiff", "-o", "-")
    assert result.returncode == ExitStatus.UNWRITABLE
    assert "bytes" not in result.stderr.decode()
    assert "No space left" in errors(result)[0]


def read_then_close(args: list[str | Path], amount: int) -> subprocess.CompletedProcess:
    """Run the command into a real pipe, read ``amount`` bytes, close it (as head does)."""
    process = subprocess.Popen(
        [*COMMAND, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    process.stdout.read(amount)
    process.stdout.close()
    stderr = process.stderr.read()
    process.wait(timeout=120)
    return subprocess.CompletedProcess(args, process.returncode, b"", stderr)


def test_closed_pipe_ends_quietly_without_claiming_success(rgb_vqi):
    result = read_then_close(["decode", rgb_vqi, "--format", "tiff", "-o", "-"], 10)
    assert result.returncode == ExitStatus.STDOUT_CLOSED
    assert result.stderr == b""
    info = read_then_close(["info", "--json", *[rgb_vqi] * 400], 100)
    assert info.returncode == ExitStatus.STDOUT_CLOSED
    assert info.stderr == b""


# --- Ctrl-C ----------------------------------------------------------------------------------


def test_ctrl_c_stops_a_parallel_batch_and_names_the_finished_outputs(tmp_path):
    inputs = []
    for seed in range(8):
        inputs.append(tmp_path / f"in{seed}.png")
        Image.fromarray(noise(200, 200, seed=seed)).save(inputs[-1])
    out = tmp_path / "out"
    out.mkdir()
    process = subprocess.Popen(
        [*COMMAND, "encode", "-j", "2", *map(str, inputs), "-o", f"{out}/"],
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    while not list(out.glob("*.vqi")) and process.poll() is None:
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C sends: the whole process group
    stderr = process.communicate(timeout=120)[1].decode()
    written = sorted(path.name for path in out.glob("*.vqi"))
    time.sleep(2)
    assert sorted(path.name for path in out.glob("*.vqi")) == written
    assert process.returncode == ExitStatus.INTERRUPTED
    assert 1 <= len(written) < len(inputs)
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("vqi: interrupted")
    for name in written:
        assert name in last
    assert leftovers(tmp_path) == []


# --- decoding is exact -----------------------------------------------------------------------


def read_back(path: Path, mode: str) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert(mode))


def test_decode_is_exact_or_refused(rgba_vqi, rgb_vqi, tmp_path):
    rgba = vqformat.decode(rgba_vqi)
    assert vqi("decode", rgba_vqi, "-o", tmp_path / "a.webp").returncode == 0
    assert np.array_equal(read_back(tmp_path / "a.webp", "RGBA"), rgba)
    assert vqi("decode", rgb_vqi, "-o", tmp_path / "b.webp").returncode == 0
    assert np.array_equal(read_back(tmp_path / "b.webp", "RGB"), vqformat.decode(rgb_vqi))
    for lossy in ("a.ppm", "a.bmp", "a.gif"):
        result = vqi("decode", rgba_vqi, "-o", tmp_path / lossy)
        assert result.returncode == ExitStatus.UNWRITABLE, lossy
        assert "exactly" in errors(result)[0]
        assert not (tmp_path / lossy).exists()
    assert vqi("decode", rgb_vqi, "-o", tmp_path / "b.ico").returncode == ExitStatus.UNWRITABLE
    assert vqi("decode", rgb_vqi, "-o", tmp_path / "b.jpg").returncode == ExitStatus.UNWRITABLE
    allowed = vqi("decode", rgb_vqi, "--lossy", "-o", tmp_path / "b.jpg")
    assert allowed.returncode == 0 and (tmp_path / "b.jpg").exists()


def test_byte_count_is_the_file_size_when_the_writer_seeks_back(rgb_vqi, tmp_path):
    result = vqi("decode", rgb_vqi, "--lossy", "-o", tmp_path / "b.ico")
    assert result.returncode == 0
    size = (tmp_path / "b.ico").stat().st_size
    assert f"{size:,} bytes" in result.stderr.decode()


def test_format_contradicting_the_output_name_is_a_usage_error(rgb_vqi, tmp_path):
    result = vqi("decode", "--format", "jpg", "-o", tmp_path / "out.png", rgb_vqi)
    assert result.returncode == ExitStatus.USAGE
    assert not (tmp_path / "out.png").exists()
    assert vqi("decode", "--format", "png", "-o", tmp_path / "out.png", rgb_vqi).returncode == 0


# --- inputs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_colour_key_transparency_is_kept(tmp_path, mode):
    grey = (np.arange(64, dtype=np.uint8).reshape(8, 8) % 4) * 60
    image = Image.fromarray(grey if mode == "L" else np.stack([grey] * 3, axis=2))
    key = 60 if mode == "L" else (60, 60, 60)
    path = tmp_path / "key.png"
    image.save(path, transparency=key)
    assert vqi("encode", path, "-o", tmp_path / "key.vqi").returncode == 0
    with Image.open(path) as original:
        expected = np.asarray(original.convert(mode + "A"))
    assert np.array_equal(vqformat.decode(tmp_path / "key.vqi"), expected)


@pytest.mark.parametrize("suffix", [".gif", ".png", ".tif"])
def test_animations_and_pages_need_a_frame_chosen(tmp_path, suffix):
    frames = [Image.fromarray(np.full((6, 5, 3), 40 * i, np.uint8)) for i in range(4)]
    path = tmp_path / f"frames{suffix}"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    refused = vqi("encode", path, "-o", tmp_path / "all.vqi")
    assert refused.returncode == ExitStatus.INPUT
    assert errors(refused) == [
        f"vqi: {path}: cannot read: it holds 4 frames and a .vqi file one image: "
        "choose one with --frame 0..3"
    ]
    assert not (tmp_path / "all.vqi").exists()
    assert vqi("encode", "--frame", "2", path, "-o", tmp_path / "two.vqi").returncode == 0
    assert np.all(vqformat.decode(tmp_path / "two.vqi") == 80)
    missing = vqi("encode", "--frame", "4", path, "-o", tmp_path / "four.vqi")
    assert missing.returncode == ExitStatus.INPUT and b"holds 4 frames" in missing.stderr
    assert vqi("encode", "--frame", "-1", path).returncode == ExitStatus.USAGE
    palette = vqi("fit-palette", "--frame", "3", "-k", "4", path, "-o", tmp_path / "p.vqi")
    assert (
        palette.returncode == 0
        and b"--frame" in vqi("fit-palette", path, "-o", tmp_path / "q.vqi").stderr
    )


def test_32_bit_images_are_refused_and_16_bit_keep_the_top_8_bits(tmp_path):
    wide = tmp_path / "wide.tif"
    Image.fromarray(np.arange(0, 255000, 1000, dtype=np.int32).reshape(15, 17)).save(wide)
    result = vqi("encode", wide)
    assert result.returncode == ExitStatus.INPUT
    assert "32-bit" in errors(result)[0]
    assert not wide.with_suffix(".vqi").exists()
    deep = tmp_path / "deep.png"
    samples = (np.arange(64, dtype=np.uint16) * 1024).reshape(8, 8)
    Image.fromarray(samples).save(deep)
    assert vqi("encode", deep, "-k", "64").returncode == 0
    assert np.array_equal(vqformat.decode(deep.with_suffix(".vqi")), samples >> 8)


def test_pixel_limit_warning_is_one_line_and_can_be_lifted(tmp_path, monkeypatch):
    big = tmp_path / "big.png"
    Image.new("L", (12000, 8000)).save(big)  # 96 MP: over half of Pillow's limit warns
    result = vqi("encode", big, "-k", "2", "-o", tmp_path / "big.vqi")
    assert result.returncode == 0
    warning = [
        line for line in result.stderr.decode().splitlines() if line.startswith("vqi: warning")
    ]
    assert len(warning) == 1 and warning[0].startswith("vqi: warning:")
    help_text = vqi("encode", "--help").stdout.decode()
    assert "--no-pixel-limit" in help_text


# --- writes keep what they replace -----------------------------------------------------------


def test_force_keeps_the_mode_and_writes_through_a_link(tmp_path):
    source = tmp_path / "p.png"
    Image.fromarray(few_colour_pixels()).save(source)
    private = tmp_path / "private.vqi"
    private.write_bytes(b"old")
    private.chmod(0o600)
    assert vqi("encode", source, "-f", "-o", private).returncode == 0
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert vqformat.read_info(private).colors == 5
    real = tmp_path / "real.vqi"
    real.write_bytes(b"old")
    link = tmp_path / "link.vqi"
    link.symlink_to(real)
    assert vqi("encode", source, "-f", "-o", link).returncode == 0
    assert link.is_symlink() and vqformat.read_info(real).colors == 5


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_output_is_written_through(tmp_path):
    source = tmp_path / "p.png"
    Image.fromarray(few_colour_pixels()).save(source)
    fifo = tmp_path / "out.vqi"
    os.mkfifo(fifo)
    with subprocess.Popen([*COMMAND, "encode", source, "-o", fifo], stderr=subprocess.PIPE) as run:
        data = fifo.read_bytes()
        _, stderr = run.communicate(timeout=60)
    assert run.returncode == 0, stderr
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert vqformat.decode(data).shape == few_colour_pixels().shape
    assert f"{len(data):,} bytes" in stderr.decode()


# --- messages and options ------------------------------------------------------------------


def test_min_psnr_is_judged_before_dithering(tmp_path):
    ramp = tmp_path / "ramp.png"
    pixels = np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 3, axis=2).repeat(8, axis=0)
    Image.fromarray(pixels).save(ramp)
    result = vqi("encode", ramp, "--min-psnr", "33", "--dither", "-o", tmp_path / "d.vqi")
    assert result.returncode == 0, result.stderr


def test_min_psnr_miss_warns_from_python():
    pixels = noise(32, 32)
    with pytest.warns(vqformat.QualityWarning) as caught:
        data = vqformat.encode(pixels, 4, min_psnr=40)
    assert caught[0].message.colors == 4 and caught[0].message.reached < 40
    assert caught[0].filename == __file__  # the caller's line, not the codec's
    assert vqformat.read_info(data).colors == 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vqformat.encode(pixels, 256, min_psnr=20)


def test_ordinary_vqi_as_palette_says_how_to_make_one(rgb_vqi, tmp_path):
    source = tmp_path / "p.png"
    Image.fromarray(few_colour_pixels()).save(source)
    result = vqi("encode", "--palette", rgb_vqi, source)
    assert result.returncode == ExitStatus.USAGE
    assert "not a palette file" in errors(result)[0] and "fit-palette" in errors(result)[0]


def test_fit_palette_into_a_folder(tmp_path):
    source = tmp_path / "p.png"
    Image.fromarray(few_colour_pixels()).save(source)
    result = vqi("fit-palette", "-k", "1", source, "-o", f"{tmp_path}/palettes/")
    assert result.returncode == 0
    assert len(vqformat.dataset.read_palette(tmp_path / "palettes" / "palette.vqi")) == 1
    assert "1 colour from 1 image" in result.stderr.decode()


def test_impossible_combinations_are_refused_up_front(tmp_path):
    rgba = tmp_path / "rgba.png"
    Image.new("RGBA", (4, 4)).save(rgba)
    for args in (
        ["--dither-strength", "2", rgba],
        ["--dask", "tcp://127.0.0.1:1", "-j", "4", rgba],
    ):
        result = vqi("encode", *args)
        assert result.returncode == ExitStatus.USAGE, args
        assert not rgba.with_suffix(".vqi").exists()
    usage = vqi("encode", "--no-such-flag", rgba)
    assert usage.stderr.decode().splitlines() == [
        "vqi: unrecognized arguments: --no-such-flag",
        "see 'vqi encode --help'",
    ]


def test_plurals(tmp_path):
    flat = tmp_path / "flat.png"
    Image.new("RGB", (4, 4)).save(flat)
    result = vqi("encode", flat)
    assert "1 colour (0 bits/index)" in result.stderr.decode()


def test_demo_into_an_impossible_folder_prints_no_table():
    result = vqi("demo", "-o", "/proc/nope")
    assert result.returncode == ExitStatus.UNWRITABLE
    assert result.stdout == b""


# --- memory ----------------------------------------------------------------------------------


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (600 << 20, 600 << 20))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS is Linux's")
@pytest.mark.parametrize("workers", ["1", "2"])
def test_out_of_memory_is_exit_17(tmp_path, rgb_vqi, workers):
    huge = tmp_path / "huge.vqi"
    blank = np.broadcast_to(np.zeros((1, 1), np.uint8), (24000, 24000))  # no memory
    huge.write_bytes(vqformat.encode(blank, 2))  # decodes to 576 MB: over the limit
    result = subprocess.run(
        [*COMMAND, "decode", "-j", workers, huge, rgb_vqi, "-o", f"{tmp_path}/out/"],
        capture_output=True,
        preexec_fn=_limit_memory,
        timeout=300,
    )
    assert result.returncode == ExitStatus.NO_MEMORY, result.stderr
    assert any("out of memory" in line for line in errors(result))
    assert (tmp_path / "out" / "rgb.png").exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses a Linux pseudo-terminal")
def test_standard_output_on_a_terminal_is_refused_before_encoding(tmp_path):
    import pty

    source = tmp_path / "p.png"
    Image.fromarray(few_colour_pixels()).save(source)
    leader, follower = pty.openpty()
    try:
        result = subprocess.run(
            [*COMMAND, "encode", source, "-o", "-", "--debug"],
            stdout=follower,
            stderr=subprocess.PIPE,
            timeout=120,
        )
    finally:
        os.close(follower)
        os.close(leader)
    assert result.returncode == ExitStatus.UNWRITABLE
    assert "terminal" in result.stderr.decode()
    assert "in _encode" not in result.stderr.decode()  # refused before the image was read


def test_images_over_the_pixel_limit_need_the_flag(tmp_path):
    big = tmp_path / "big.png"
    Image.new("L", (15000, 12000)).save(big)  # 180 MP: over twice Pillow's warning limit
    refused = vqi("encode", big, "-k", "2")
    assert refused.returncode == ExitStatus.INPUT
    assert "--no-pixel-limit" in errors(refused)[0]
    assert not big.with_suffix(".vqi").exists()
    assert vqi("encode", big, "-k", "2", "--no-pixel-limit").returncode == 0
    assert vqformat.read_info(big.with_suffix(".vqi")).width == 15000


def test_empty_standard_input_and_empty_names_are_named(tmp_path):
    empty = vqi("encode", "-", "-o", tmp_path / "e.vqi")
    assert empty.returncode == ExitStatus.INPUT
    assert errors(empty) == ["vqi: stdin: cannot read: standard input is empty"]
    for args in (("encode", "x.png", "-o", ""), ("encode", ""), ("decode", "x.vqi", "-o", "")):
        result = vqi(*args, cwd=tmp_path)
        assert result.returncode == ExitStatus.USAGE
        assert errors(result) == ["vqi: an empty file name names no file"]
