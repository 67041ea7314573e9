"""The ``vqi`` console script, driven in a subprocess as a user would run it."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import vqformat
from vqformat.cli.jobs import ExitStatus

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).with_name("vqi")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "vqformat.cli"]


def vqi(*args: str | Path, stdin: bytes = b"", cwd: Path | None = None):
    """Run the console script; returns the CompletedProcess with bytes output."""
    return subprocess.run(
        [*COMMAND, *map(str, args)], input=stdin, capture_output=True, cwd=cwd, timeout=120
    )


def errors(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.decode().splitlines() if line.startswith("vqi: ")]


def few_colour_pixels(height: int = 24, width: int = 32) -> np.ndarray:
    """An RGB image of exactly five colours, so that encoding with k >= 5 is lossless."""
    colours = np.array(
        [[0, 0, 0], [255, 0, 0], [0, 200, 0], [10, 20, 250], [255, 255, 255]], dtype=np.uint8
    )
    rng = np.random.default_rng(7)
    return colours[rng.integers(0, len(colours), size=(height, width))]


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.png"
    Image.fromarray(few_colour_pixels()).save(path)
    return path


@pytest.fixture
def encoded(photo: Path) -> Path:
    """photo.vqi beside photo.png, written through the API (tests of encode use the CLI)."""
    path = photo.with_suffix(".vqi")
    path.write_bytes(vqformat.encode(few_colour_pixels(), 8))
    return path


@pytest.fixture
def junk(tmp_path: Path) -> Path:
    path = tmp_path / "junk.png"
    path.write_bytes(b"this is not an image\n")
    return path


def leftovers(folder: Path) -> list[str]:
    """Temporary files an interrupted or failed write would leave behind."""
    return sorted(path.name for path in folder.rglob("*.tmp"))


# --- help, version, start-up ------------------------------------------------------------


def test_help_lists_commands_examples_and_every_exit_status():
    result = vqi("--help")
    assert result.returncode == 0
    text = result.stdout.decode()
    for word in ("encode", "decode", "info", "demo", "examples:", "exit status:"):
        assert word in text
    for status in ExitStatus:
        assert f"\n  {int(status):<4}" in text


@pytest.mark.parametrize("command", ["encode", "decode", "info", "demo"])
def test_each_command_has_help_with_examples(command):
    result = vqi(command, "--help")
    assert result.returncode == 0
    assert f"usage: vqi {command}" in result.stdout.decode()
    assert f"examples:\n  vqi {command}" in result.stdout.decode()


def test_version():
    result = vqi("--version")
    assert (result.returncode, result.stdout.decode().strip()) == (0, f"vqi {vqformat.__version__}")


def test_module_entry_point_runs_the_same_command():
    result = subprocess.run(
        [sys.executable, "-m", "vqformat.cli", "--version"], capture_output=True, timeout=60
    )
    assert result.stdout.decode().strip() == f"vqi {vqformat.__version__}"


@pytest.mark.parametrize("arguments", [["--help"], ["info", "PHOTO"], ["encode", "--help"]])
def test_start_up_does_not_import_scikit_learn(encoded, arguments):
    arguments = [str(encoded) if a == "PHOTO" else a for a in arguments]
    probe = (
        "import sys\n"
        "from vqformat.cli import main\n"
        "try:\n"
        f"    main({arguments!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'sklearn'), file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=60)
    assert result.stderr.decode().strip().splitlines()[-1] == "[]"


def test_usage_errors_exit_with_status_1(photo):
    assert vqi().returncode == ExitStatus.USAGE
    assert vqi("encode", photo, "-k", "0").returncode == ExitStatus.USAGE
    assert vqi("encode", photo, "--method", "no-such-method").returncode == ExitStatus.USAGE


# --- encode, decode, info -----------------------------------------------------------------


def test_encode_decode_round_trip_is_exact_for_few_colours(photo, tmp_path):
    result = vqi("encode", photo, "-k", "8")
    assert result.returncode == 0, result.stderr
    encoded = photo.with_suffix(".vqi")
    assert vqformat.read_info(encoded).colors == 5
    decoded = tmp_path / "decoded.png"
    assert vqi("decode", encoded, "-o", decoded).returncode == 0
    assert np.array_equal(np.asarray(Image.open(decoded)), few_colour_pixels())


def test_decode_format_follows_the_extension(photo, encoded, tmp_path):
    for name, pillow_format in [("a.bmp", "BMP"), ("a.webp", "WEBP")]:
        assert vqi("decode", encoded, "-o", tmp_path / name).returncode == 0
        assert Image.open(tmp_path / name).format == pillow_format
    assert vqi("decode", encoded).returncode == ExitStatus.OUTPUT_EXISTS  # photo.png
    result = vqi("decode", encoded, "-o", tmp_path / "a.nosuchformat")
    assert result.returncode == ExitStatus.USAGE


def test_info_reports_header_and_sizes(photo):
    vqi("encode", photo, "-k", "8", "--compression", "stored")
    encoded = photo.with_suffix(".vqi")
    text = vqi("info", encoded).stdout.decode()
    assert "32 x 24 pixels, RGB" in text
    assert "5 colours, 3 bits per index" in text
    result = vqi("info", "--json", encoded)
    assert result.returncode == 0
    (entry,) = json.loads(result.stdout)
    size = encoded.stat().st_size
    assert entry["file"] == str(encoded)
    assert (entry["width"], entry["height"], entry["mode"], entry["channels"]) == (32, 24, "RGB", 3)
    assert (entry["colors"], entry["bits_per_index"], entry["compression"]) == (5, 3, "stored")
    assert entry["bytes"] == size
    assert entry["bits_per_pixel"] == pytest.approx(8 * size / (32 * 24))
    assert entry["ratio"] == pytest.approx(32 * 24 * 3 / size)


def test_stdin_to_stdout(photo):
    vqi("encode", photo, "-k", "8")
    from_file = photo.with_suffix(".vqi").read_bytes()
    encoded = vqi("encode", "-", "-k", "8", stdin=photo.read_bytes())
    assert encoded.returncode == 0
    assert encoded.stdout == from_file
    decoded = vqi("decode", "-", stdin=encoded.stdout)
    assert decoded.returncode == 0
    assert decoded.stdout.startswith(b"\x89PNG")
    info = vqi("info", "--json", "-", stdin=encoded.stdout)
    assert json.loads(info.stdout)[0]["bytes"] == len(from_file)


def test_existing_output_is_not_overwritten_without_force(photo):
    assert vqi("encode", photo, "-k", "8").returncode == 0
    encoded = photo.with_suffix(".vqi")
    encoded.write_bytes(b"precious")
    result = vqi("encode", photo, "-k", "8")
    assert result.returncode == ExitStatus.OUTPUT_EXISTS
    assert errors(result) == [f"vqi: {photo}: {encoded} exists (use --force to overwrite)"]
    assert encoded.read_bytes() == b"precious"
    assert vqi("encode", photo, "-k", "8", "--force").returncode == 0
    assert vqformat.read_info(encoded).colors == 5


def test_output_never_replaces_the_input(photo, tmp_path):
    copy = tmp_path / "copy.vqi"
    vqi("encode", photo, "-o", copy)
    result = vqi("encode", copy, "-o", copy, "--force")
    assert result.returncode == ExitStatus.USAGE
    assert vqformat.read_info(copy).colors == 5


# --- failures: messages, statuses, no partial files -----------------------------------------


def test_missing_and_non_image_inputs(photo, junk, tmp_path):
    missing = tmp_path / "missing.png"
    result = vqi("encode", missing)
    assert result.returncode == ExitStatus.INPUT
    assert errors(result) == [f"vqi: {missing}: cannot read: No such file or directory"]
    result = vqi("encode", junk)
    assert result.returncode == ExitStatus.INPUT
    assert errors(result) == [f"vqi: {junk}: cannot read: not an image format Pillow can read"]
    assert b"Traceback" not in result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["junk.png", "photo.png"]


def test_corrupt_vqi_files(photo, encoded, tmp_path):
    data = encoded.read_bytes()
    flipped = tmp_path / "flipped.vqi"
    flipped.write_bytes(data[:-20] + bytes([data[-20] ^ 1]) + data[-19:])
    truncated = tmp_path / "truncated.vqi"
    truncated.write_bytes(data[: len(data) // 2])
    for broken in (flipped, truncated):
        result = vqi("decode", broken)
        assert result.returncode == ExitStatus.CORRUPT
        (line,) = errors(result)
        assert line.startswith(f"vqi: {broken}: cannot decode: ")
        assert b"Traceback" not in result.stderr
        assert not broken.with_suffix(".png").exists()
    assert vqi("info", photo).returncode == ExitStatus.CORRUPT
    assert b"Traceback" in vqi("decode", "--debug", flipped).stderr


def test_failed_write_leaves_no_file_and_keeps_the_old_one(photo, tmp_path):
    rgba = tmp_path / "rgba.png"
    Image.fromarray(np.dstack([few_colour_pixels(), np.full((24, 32), 128, np.uint8)])).save(rgba)
    rgba.with_suffix(".vqi").write_bytes(vqformat.encode(np.asarray(Image.open(rgba)), 8))
    target = tmp_path / "old.jpg"
    target.write_bytes(b"old content")
    # Pillow fails inside save (JPEG has no alpha), after the temporary file was opened.
    result = vqi("decode", rgba.with_suffix(".vqi"), "-o", target, "--force")
    assert result.returncode == ExitStatus.UNWRITABLE
    assert "cannot write mode RGBA as JPEG" in errors(result)[0]
    assert target.read_bytes() == b"old content"
    result = vqi("decode", rgba.with_suffix(".vqi"), "-o", tmp_path / "new.jpg")
    assert result.returncode == ExitStatus.UNWRITABLE
    assert not (tmp_path / "new.jpg").exists()
    assert leftovers(tmp_path) == []


def test_unwritable_outputs(photo, tmp_path):
    photo.with_suffix(".vqi").mkdir()  # the default output name is taken by a folder
    result = vqi("encode", photo, "--force")
    assert result.returncode == ExitStatus.UNWRITABLE
    assert errors(result) == [
        f"vqi: {photo}: cannot write {photo.with_suffix('.vqi')}: Is a directory"
    ]
    for target in (photo / "inside-a-file.vqi", tmp_path / "no" / "x.vqi"):
        result = vqi("encode", photo, "-o", target, "--force")
        assert result.returncode == ExitStatus.UNWRITABLE, target
        (line,) = errors(result)
        assert line.startswith(f"vqi: {photo}: cannot write {target}: ")
    assert leftovers(tmp_path) == []


def run_in_read_only_folder(folder: Path, *args: str | Path) -> subprocess.CompletedProcess:
    """Run vqi with ``folder`` read-only: by permission bits, or for root (who ignores
    them) by mounting a read-only file system there in a private mount namespace."""
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            return vqi(*args)
        finally:
            folder.chmod(0o755)
    mount = 'mount -t tmpfs -o ro tmpfs "$0" || exit 111; exec "$@"'
    command = ["unshare", "--mount", "sh", "-c", mount, str(folder), *COMMAND, *map(str, args)]
    try:
        result = subprocess.run(command, capture_output=True, timeout=120)
    except FileNotFoundError:
        pytest.skip("root ignores permission bits and unshare is not available")
    if result.returncode == 111 or b"unshare:" in result.stderr:
        pytest.skip("root ignores permission bits and cannot mount a read-only folder")
    return result


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX permissions")
def test_read_only_folder(photo, tmp_path):
    folder = tmp_path / "read-only"
    result = run_in_read_only_folder(folder, "encode", photo, "-o", folder / "x.vqi")
    assert result.returncode == ExitStatus.UNWRITABLE
    (line,) = errors(result)
    assert line.startswith(f"vqi: {photo}: cannot write {folder / 'x.vqi'}: ")
    assert line.endswith(("Permission denied", "Read-only file system"))
    assert list(folder.iterdir()) == []


def test_skip_if_larger(tmp_path):
    noisy = tmp_path / "noisy.png"
    pixels = np.random.default_rng(1).integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(noisy)
    assert vqi("encode", noisy, "-o", tmp_path / "reference.vqi").returncode == 0
    assert (tmp_path / "reference.vqi").stat().st_size >= noisy.stat().st_size
    result = vqi("encode", noisy, "--skip-if-larger")
    assert result.returncode == ExitStatus.SKIPPED
    assert not noisy.with_suffix(".vqi").exists()
    small = tmp_path / "small.bmp"
    Image.fromarray(few_colour_pixels()).save(small)
    assert vqi("encode", small, "--skip-if-larger").returncode == 0


def test_quality_target_and_dithering(tmp_path):
    ramp = tmp_path / "ramp.png"
    pixels = np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 3, axis=2).repeat(8, axis=0)
    Image.fromarray(pixels).save(ramp)
    assert vqi("encode", ramp, "--min-psnr", "30", "-o", tmp_path / "q.vqi").returncode == 0
    assert 2 < vqformat.read_info(tmp_path / "q.vqi").colors < 64
    assert vqi("encode", ramp, "-k", "4", "--dither", "-o", tmp_path / "d.vqi").returncode == 0
    assert len(np.unique(vqformat.decode(tmp_path / "d.vqi")[:, 100:140])) > 1
    result = vqi("encode", ramp, "-k", "4", "--min-psnr", "45", "-o", tmp_path / "miss.vqi")
    assert result.returncode == ExitStatus.QUALITY_TOO_LOW
    assert "below --min-psnr 45" in errors(result)[0]
    assert not (tmp_path / "miss.vqi").exists()
    for bad in ["0", "-3", "inf", "loud"]:
        assert vqi("encode", ramp, "--min-psnr", bad).returncode == ExitStatus.USAGE
    rgba = tmp_path / "rgba.png"
    Image.new("RGBA", (4, 4)).save(rgba)
    assert vqi("encode", "--dither-strength", "0.5", rgba).returncode == 0  # alpha dithers too
    assert vqformat.decode(rgba.with_suffix(".vqi")).shape == (4, 4, 4)
    result = vqi("encode", "--dither-strength", "2", rgba, "-o", tmp_path / "bad.vqi")
    assert result.returncode == ExitStatus.USAGE
    assert not (tmp_path / "bad.vqi").exists()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_batch_with_bad_inputs_finishes_the_rest(photo, junk, tmp_path, workers):
    second = tmp_path / "second.png"
    Image.fromarray(few_colour_pixels()[::-1]).save(second)
    missing = tmp_path / "missing.png"
    out = tmp_path / "out"
    result = vqi("encode", photo, junk, missing, second, "-k", "8", "-j", workers, "-o", f"{out}/")
    assert result.returncode == ExitStatus.INPUT
    assert [line.split(":")[1].strip() for line in errors(result)] == [str(junk), str(missing)]
    assert sorted(path.name for path in out.iterdir()) == ["photo.vqi", "second.vqi"]
    summary = result.stderr.decode().splitlines()[-1]
    assert summary.startswith("4 files: 2 encoded, 0 skipped, 2 failed")
    assert b"Traceback" not in result.stderr


def test_batch_outputs_beside_inputs_and_quiet(photo, tmp_path):
    second = tmp_path / "second.png"
    Image.fromarray(few_colour_pixels()[::-1]).save(second)
    result = vqi("encode", "-q", photo, second, "-k", "8")
    assert (result.returncode, result.stderr) == (0, b"")
    assert photo.with_suffix(".vqi").exists() and second.with_suffix(".vqi").exists()
    result = vqi(
        "decode", photo.with_suffix(".vqi"), second.with_suffix(".vqi"), "-o", tmp_path / "x.png"
    )
    assert result.returncode == ExitStatus.USAGE


# --- demo and README ----------------------------------------------------------------------


def test_demo_writes_files_contact_sheet_and_table(tmp_path):
    out = tmp_path / "demo"
    result = vqi("demo", "-o", out)
    assert result.returncode == 0, result.stderr
    written = sorted(path.name for path in out.iterdir())
    assert "contact-sheet.png" in written
    vqi_files = [name for name in written if name.endswith(".vqi")]
    table = result.stdout.decode()
    for name in vqi_files:
        row = next(line for line in table.splitlines() if line.startswith(name))
        assert f"{(out / name).stat().st_size:,}" in row.split()
    assert {vqformat.read_info(out / name).mode for name in vqi_files} == {"RGB", "L"}
    sheet = Image.open(out / "contact-sheet.png")
    assert sheet.format == "PNG" and sheet.width > 1000
    again = vqi("demo", "-o", out)
    assert again.returncode == ExitStatus.OUTPUT_EXISTS
    assert leftovers(out) == []


def test_readme_documents_every_exit_status():
    readme = (ROOT / "README.md").read_text()
    for status in ExitStatus:
        assert f"| {int(status)} |" in readme, status


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses a Linux pseudo-terminal")
def test_progress_bar_only_on_a_terminal(photo, tmp_path):
    import fcntl
    import pty
    import struct
    import termios

    second = tmp_path / "second.png"
    Image.fromarray(few_colour_pixels()[::-1]).save(second)
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    with os.fdopen(leader, "rb", buffering=0) as terminal:
        process = subprocess.Popen(
            [*COMMAND, "encode", str(photo), str(second), "-o", f"{tmp_path}/bar/"],
            stderr=follower,
        )
        os.close(follower)
        assert process.wait(timeout=120) == 0
        shown = b""
        with contextlib.suppress(OSError):  # EIO once the terminal is closed
            while chunk := terminal.read(4096):
                shown += chunk
    assert b"0/2" in shown and b"file/s" in shown
    piped = vqi("encode", photo, second, "-o", f"{tmp_path}/piped/")
    assert b"file/s" not in piped.stderr


def noisy_pngs(folder: Path, count: int = 3) -> list[Path]:
    """Small noisy images: more colours than a dataset palette of 12 holds."""
    paths = []
    for number in range(count):
        rng = np.random.default_rng(number)
        paths.append(folder / f"{number}.png")
        Image.fromarray(rng.integers(0, 256, (30, 40 + number, 3), dtype=np.uint8)).save(paths[-1])
    return paths


def test_fit_palette_then_encode_every_image_with_it(tmp_path):
    inputs = noisy_pngs(tmp_path)
    palette_file = tmp_path / "palette.vqi"
    assert vqi("fit-palette", "-q", "-k", "12", *inputs, "-o", palette_file).returncode == 0
    palette = vqformat.dataset.read_palette(palette_file)
    assert len(palette) <= 12
    out = tmp_path / "out"
    assert vqi("encode", "-q", "--palette", palette_file, *inputs, "-o", f"{out}/").returncode == 0
    for path in inputs:
        stored, _ = vqformat.decode_indexed(out / f"{path.stem}.vqi")
        assert np.array_equal(stored, palette)


def test_a_palette_option_that_names_no_palette_file_is_a_usage_error(tmp_path):
    (image,) = noisy_pngs(tmp_path, 1)
    result = vqi("encode", "--palette", image, image)
    assert result.returncode == ExitStatus.USAGE
    assert "--palette" in errors(result)[0]
