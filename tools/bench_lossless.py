"""Lossless-container bench: one palette image as PNG-8, GIF, WebP, JPEG XL and each .vqi method.

Each image is quantized by pngquant (no dithering) to a P-mode PNG; that palette image
is then stored losslessly in every format (each file is checked to decode to the same
pixels), and each file is decoded the way a viewer opens it: Pillow open + load +
convert to RGB (JPEG XL, which Pillow does not read, through imagecodecs on one
thread, or the djxl process when imagecodecs lacks it). Decode times are taken in
rounds, every format once a round, so a load spike from other processes hits all
alike: time/png8 compares median times, best/png8 the fastest of the repeats (the
cost with the least interference). Encode times are the fastest of a few runs (one
for the cjxl process).

Ratios are against PNG-8 (the smaller and the faster of pngquant's file and Pillow's
optimize=True), WebP-lossless (method 6) and JPEG XL lossless at effort 7, measured
in the same run. Medians are given per image class (photo, grey: grey photos and
textures, drawing: drawings, text and screenshots, synthetic: gradients and shapes
drawn here), over all classes, and over all k together; the worst image of each
ratio is named. A peer whose tool is missing (cjxl, imagecodecs) is left out.

Images: scikit-learn's two photos and scikit-image's data (without it, only the
synthetic ones), plus any ``--image`` files (class photo).

    python tools/bench_lossless.py [--colors 16 64 256] [--repeats 15] [--jxl-efforts 7 9]
        [--image a.png ...] [--json results.json]
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from bench_images import HELD_OUT_PHOTOS, SKIMAGE_IMAGES
from PIL import Image, ImageDraw

import vqformat
from vqformat import pillow_plugin  # noqa: F401  (registers the .vqi format)
from vqformat.format.methods import COMPRESSION_METHODS as METHODS

try:
    import imagecodecs

    JXL_IN_PROCESS = bool(imagecodecs.JPEGXL.available)
except ImportError:
    JXL_IN_PROCESS = False

Decoder = Callable[[bytes], "Image.Image | np.ndarray"]
CLASSES = ("photo", "grey", "drawing", "synthetic")
PNG8 = ("png8-pngquant", "png8-optimize")
WEBP = "webp-lossless"
JXL_REFERENCE = "jxl-e7"
RATIOS = ("bytes/png8", "bytes/webp", "bytes/jxl7", "time/png8", "best/png8")


@dataclass(frozen=True)
class Row:
    """One file of one image at one palette size."""

    image: str
    image_class: str
    colors: int
    format: str
    bytes: int
    pixels: int
    encode_ms: float
    decode_ms: float | None  # median over the repeats; None when not timed
    decode_best_ms: float | None


@dataclass(frozen=True)
class Candidate:
    data: bytes
    encode_seconds: float
    decode: Decoder | None


# --- images -----------------------------------------------------------------------


def bench_images(extra: list[str]) -> dict[str, tuple[str, np.ndarray]]:
    """Name -> (class, (H, W, 3) uint8 RGB) for every image whose package is installed."""
    images: dict[str, tuple[str, np.ndarray]] = {}
    try:
        from sklearn.datasets import load_sample_image

        for name in ("china", "flower"):
            images[name] = ("photo", load_sample_image(f"{name}.jpg"))
    except ImportError:
        pass
    images.update(_skimage_images())
    images.update(_scipy_images())
    images.update(synthetic_images())
    for path in extra:
        images[path] = ("photo", _rgb(np.asarray(Image.open(path).convert("RGBA"))))
    return images


_SKIMAGE = {
    "photo": (*SKIMAGE_IMAGES, *HELD_OUT_PHOTOS),
    "grey": ("camera", "brick", "grass"),
    "drawing": ("text", "page", "logo"),
}


def _skimage_images() -> dict[str, tuple[str, np.ndarray]]:
    try:
        import skimage.data
    except ImportError:
        return {}
    found = {}
    for image_class, names in _SKIMAGE.items():
        for name in names:
            loader = getattr(skimage.data, name, None)
            if loader is not None:
                found[name] = (image_class, _rgb(loader()))
    return found


def _scipy_images() -> dict[str, tuple[str, np.ndarray]]:
    """Ascent and the raccoon face from SciPy releases that still ship them offline."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from scipy import misc
    except ImportError:
        return {}
    found = {}
    for name, load in (("ascent", "ascent"), ("face", "face")):
        try:
            pixels = getattr(misc, load)()
        except (AttributeError, ImportError):  # removed from scipy.misc in SciPy 1.12
            continue
        found[name] = ("grey" if pixels.ndim == 2 else "photo", _rgb(pixels))
    return found


def _rgb(pixels: np.ndarray) -> np.ndarray:
    """RGB uint8: grey repeated, alpha composited over white (the bench has no alpha)."""
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8:
        pixels = np.clip(pixels.astype(float) * (255 / max(1, pixels.max())), 0, 255)
        pixels = pixels.astype(np.uint8)
    if pixels.ndim == 2:
        return np.repeat(pixels[:, :, None], 3, axis=2)
    if pixels.shape[2] == 4:
        alpha = pixels[:, :, 3:].astype(np.float32) / 255
        return (pixels[:, :, :3] * alpha + 255 * (1 - alpha) + 0.5).astype(np.uint8)
    return pixels[:, :, :3]


def synthetic_images() -> dict[str, tuple[str, np.ndarray]]:
    """A smooth colour gradient, flat shapes and a line chart with text, drawn here."""
    y, x = np.mgrid[0:384, 0:512].astype(np.float32)
    radius = np.hypot(x - 256, y - 192) / 320
    gradient = np.stack([x / 511, y / 383, 1 - radius.clip(0, 1)], axis=2) * 255
    return {
        "gradient": ("synthetic", (gradient + 0.5).astype(np.uint8)),
        "shapes": ("synthetic", _drawing(_shapes)),
        "chart": ("synthetic", _drawing(_chart)),
    }


def _drawing(draw: Callable[[ImageDraw.ImageDraw], None]) -> np.ndarray:
    canvas = Image.new("RGB", (512, 384), "white")
    draw(ImageDraw.Draw(canvas))
    return np.asarray(canvas)


def _shapes(draw: ImageDraw.ImageDraw) -> None:
    rng = np.random.default_rng(3)
    for _ in range(40):
        x0, y0 = rng.integers(0, 480), rng.integers(0, 352)
        box = (x0, y0, x0 + rng.integers(16, 160), y0 + rng.integers(16, 120))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour, outline="black")


def _chart(draw: ImageDraw.ImageDraw) -> None:
    rng = np.random.default_rng(4)
    for step in range(0, 512, 32):
        draw.line([(step, 0), (step, 383)], fill=(225, 225, 225))
    for colour in ("#1f77b4", "#d62728", "#2ca02c"):
        values = 192 + np.cumsum(rng.normal(0, 12, 64))
        draw.line([(8 * i, float(v)) for i, v in enumerate(values)], fill=colour, width=2)
    for row in range(6):
        draw.text((12, 12 + 14 * row), f"series {row}: {rng.integers(0, 10**6)}", fill="black")


# --- files ------------------------------------------------------------------------


def pngquant(pixels: np.ndarray, colors: int, workdir: Path) -> bytes:
    source, target = workdir / "in.png", workdir / "out.png"
    Image.fromarray(pixels).save(source)
    command = ["pngquant", "--speed", "1", "--nofs", "--force", "-o", str(target), str(colors)]
    subprocess.run([*command, str(source)], check=True)
    return target.read_bytes()


def timed(encode: Callable[[], bytes], repeats: int = 3) -> tuple[bytes, float]:
    """The encoder's output and its fastest time of ``repeats`` runs."""
    best, data = float("inf"), b""
    for _ in range(repeats):
        start = time.perf_counter()
        data = encode()
        best = min(best, time.perf_counter() - start)
    return data, best


def pillow_bytes(image: Image.Image, format_name: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, format_name, **options)
    return out.getvalue()


def decode_with_pillow(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.convert("RGB")


def decode_jxl(data: bytes) -> np.ndarray:
    return imagecodecs.jpegxl_decode(data, numthreads=1)


def cjxl(png8: bytes, effort: int, workdir: Path) -> tuple[bytes, float]:
    source, target = workdir / "in8.png", workdir / "out.jxl"
    source.write_bytes(png8)
    command = ["cjxl", "-d", "0", "-e", str(effort), "--quiet", str(source), str(target)]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return target.read_bytes(), time.perf_counter() - start


def djxl_decoder(workdir: Path) -> Decoder:
    """Decode through the djxl process (its start-up included): imagecodecs is missing."""

    def decode(data: bytes) -> Image.Image:
        source, target = workdir / "dec.jxl", workdir / "dec.png"
        source.write_bytes(data)
        subprocess.run(["djxl", str(source), str(target)], check=True, capture_output=True)
        return decode_with_pillow(target.read_bytes())

    return decode


def candidates(png8: bytes, workdir: Path, jxl_efforts: list[int]) -> dict[str, Candidate]:
    """Every lossless file of one palette image, how long it took to write, and its decoder."""
    image = Image.open(io.BytesIO(png8))
    image.load()
    files = {
        **peer_files(image, png8, workdir, jxl_efforts),
        **vqi_files(image),
    }
    check_same_pixels(files, np.asarray(image.convert("RGB")))
    return files


def peer_files(
    image: Image.Image, png8: bytes, workdir: Path, jxl_efforts: list[int]
) -> dict[str, Candidate]:
    """PNG-8 (pngquant's file, not timed, and Pillow's optimize=True), GIF, WebP-lossless
    method 6, and JPEG XL lossless at each effort when cjxl is installed."""
    files = {
        "png8-pngquant": Candidate(png8, float("nan"), decode_with_pillow),
        "png8-optimize": Candidate(
            *timed(lambda: pillow_bytes(image, "PNG", optimize=True)), decode_with_pillow
        ),
        "gif": Candidate(*timed(lambda: pillow_bytes(image, "GIF")), decode_with_pillow),
        WEBP: Candidate(
            *timed(lambda: pillow_bytes(image, "WEBP", lossless=True, method=6, quality=100), 1),
            decode_with_pillow,
        ),
    }
    if not shutil.which("cjxl"):
        return files
    jxl_decode = decode_jxl if JXL_IN_PROCESS else None
    if jxl_decode is None and shutil.which("djxl"):
        jxl_decode = djxl_decoder(workdir)
    for effort in jxl_efforts:
        files[f"jxl-e{effort}"] = Candidate(*cjxl(png8, effort, workdir), jxl_decode)
    return files


def vqi_files(image: Image.Image) -> dict[str, Candidate]:
    """The P image's used palette entries and indices in each .vqi method."""
    indices = np.asarray(image)
    palette = np.array(image.getpalette(), dtype=np.uint8).reshape(-1, 3)
    used = palette[: int(indices.max()) + 1]
    files = {}
    for name in METHODS:
        encode = lambda name=name: vqformat.encode_indexed(used, indices, compression=name)  # noqa: E731
        files[f"vqi-{name}"] = Candidate(*timed(encode), decode_with_pillow)
    return files


def check_same_pixels(files: dict[str, Candidate], expected: np.ndarray) -> None:
    """Every file that can be decoded here holds the palette image's pixels exactly."""
    for key, candidate in files.items():
        if candidate.decode is None:
            continue
        decoded = np.asarray(candidate.decode(candidate.data))
        if decoded.ndim == 2:  # a grey palette may come back as one channel
            decoded = np.repeat(decoded[:, :, None], 3, axis=2)
        assert np.array_equal(decoded, expected), f"{key} does not hold the same pixels"


def decode_times(files: dict[str, Candidate], repeats: int) -> dict[str, list[float]]:
    """Seconds per decode, the formats taken in turn each round so load spikes hit all alike."""
    times: dict[str, list[float]] = {key: [] for key, file in files.items() if file.decode}
    for _ in range(repeats):
        for key in times:
            file = files[key]
            start = time.perf_counter()
            file.decode(file.data)
            times[key].append(time.perf_counter() - start)
    return times


# --- measuring and reporting ------------------------------------------------------


def measure(
    images: dict[str, tuple[str, np.ndarray]],
    colors: int,
    repeats: int,
    jxl_efforts: list[int],
    workdir: Path,
) -> list[Row]:
    rows = []
    for name, (image_class, pixels) in images.items():
        files = candidates(pngquant(pixels, colors, workdir), workdir, jxl_efforts)
        times = decode_times(files, repeats)
        for key, file in files.items():
            spent = times.get(key)
            rows.append(
                Row(
                    name,
                    image_class,
                    colors,
                    key,
                    len(file.data),
                    pixels.shape[0] * pixels.shape[1],
                    1e3 * file.encode_seconds,
                    1e3 * float(np.median(spent)) if spent else None,
                    1e3 * min(spent) if spent else None,
                )
            )
        print_image(rows[-len(files) :])
    return rows


def print_image(rows: list[Row]) -> None:
    """One line per image and k: every format's bytes, then PNG-8's decode time."""
    first = rows[0]
    sizes = " ".join(f"{row.format}={row.bytes}" for row in rows)
    png8 = min(row.decode_ms for row in rows if row.format in PNG8)
    print(f"  k={first.colors} {first.image} ({first.image_class}): {sizes}; png8 {png8:.2f} ms")


def ratios(rows: list[Row]) -> dict[str, dict[str, list[tuple[float, Row]]]]:
    """Format -> column -> (value, row) per image and k, against that image's peers."""
    by_image: dict[tuple[str, int], dict[str, Row]] = {}
    for row in rows:
        by_image.setdefault((row.image, row.colors), {})[row.format] = row
    table: dict[str, dict[str, list[tuple[float, Row]]]] = {}
    for peers in by_image.values():
        png8 = [peers[key] for key in PNG8]
        png_bytes = min(row.bytes for row in png8)
        png_time = min(row.decode_ms for row in png8)
        png_best = min(row.decode_best_ms for row in png8)
        for key, row in peers.items():
            columns = {
                "bits/px": 8 * row.bytes / row.pixels,
                "bytes/png8": row.bytes / png_bytes,
                "bytes/webp": row.bytes / peers[WEBP].bytes,
                "enc ms": row.encode_ms,
            }
            if JXL_REFERENCE in peers:
                columns["bytes/jxl7"] = row.bytes / peers[JXL_REFERENCE].bytes
            if row.decode_ms is not None:
                columns["dec ms"] = row.decode_ms
                columns["time/png8"] = row.decode_ms / png_time
                columns["best/png8"] = row.decode_best_ms / png_best
            for column, value in columns.items():
                table.setdefault(key, {}).setdefault(column, []).append((value, row))
    return table


def _median(cells: list[tuple[float, Row]]) -> str:
    values = [value for value, _ in cells if not np.isnan(value)]
    return f"{np.median(values):.3f}" if values else "-"


def report(title: str, rows: list[Row]) -> None:
    table = ratios(rows)
    columns = ["bits/px", "bytes/png8", "bytes/webp", "bytes/jxl7", "time/png8", "best/png8"]
    columns += ["dec ms", "enc ms"]
    count = len({(row.image, row.colors) for row in rows})
    print(f"\n{title}: medians over {count} images")
    print(f"{'format':26}" + "".join(f"{c:>11}" for c in columns))
    for key, cells in table.items():
        print(f"{key:26}" + "".join(f"{_median(cells.get(c, [])):>11}" for c in columns))
    classes = [c for c in CLASSES if any(row.image_class == c for row in rows)]
    for ratio in RATIOS:
        print(f"\n{title}: median {ratio} per image class")
        print(f"{'format':26}" + "".join(f"{c:>11}" for c in classes))
        for key, cells in table.items():
            if ratio not in cells:
                continue
            per_class = (
                [cell for cell in cells[ratio] if cell[1].image_class == c] for c in classes
            )
            print(f"{key:26}" + "".join(f"{_median(part):>11}" for part in per_class))
    print(f"\n{title}: worst image of each ratio")
    print(f"{'format':26}" + "".join(f"{c:>30}" for c in RATIOS))
    for key, cells in table.items():
        worst = (max(cells[c], key=lambda cell: cell[0]) if c in cells else None for c in RATIOS)
        print(f"{key:26}" + "".join(f"{_worst(cell):>30}" for cell in worst))


def _worst(cell: tuple[float, Row] | None) -> str:
    if cell is None:
        return "-"
    value, row = cell
    return f"{value:.3f} {row.image[-14:]} k={row.colors}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--colors", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--jxl-efforts", type=int, nargs="*", default=[7, 9])
    parser.add_argument("--image", nargs="*", default=[], help="more image files (photos)")
    parser.add_argument("--only", nargs="*", default=[], help="bench only these images")
    parser.add_argument("--json", type=Path, help="write every measured row here")
    args = parser.parse_args()
    if not shutil.which("pngquant"):
        raise SystemExit("pngquant is not installed (apt-get install pngquant)")
    images = bench_images(args.image)
    if args.only:
        images = {name: images[name] for name in args.only}
    jxl = "imagecodecs" if JXL_IN_PROCESS else "djxl" if shutil.which("djxl") else "not timed"
    print(f"JPEG XL: {'cjxl' if shutil.which('cjxl') else 'absent'}, decoded by {jxl}")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as workdir:
        for colors in args.colors:
            found = measure(images, colors, args.repeats, args.jxl_efforts, Path(workdir))
            report(f"k = {colors}", found)
            rows += found
    if len(args.colors) > 1:
        report(f"k = {', '.join(map(str, args.colors))} together", rows)
    if args.json:
        args.json.write_text(json.dumps([asdict(row) for row in rows], indent=1))


if __name__ == "__main__":
    main()
