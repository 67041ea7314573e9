"""Lossless-container bench: the same palette image as PNG-8, GIF, WebP-lossless and .vqi.

Each photo is quantized by pngquant (no dithering) to a P-mode PNG; that palette
image is then stored losslessly in each format, and each file is decoded through
Pillow (open + load + convert to RGB, median of repeats). Ratios are against PNG-8
(the smaller and the faster of pngquant's file and Pillow's optimize=True) and WebP-lossless
(method 6) measured in the same run, so a busy machine slows all alike: time/png8
compares median decode times, best/png8 the fastest of the repeats (the cost with
the least interference from other processes).

Needs the pngquant binary; scikit-image adds four photos to scikit-learn's two, and
``--image`` adds any image files (the worst photo of each ratio is printed too).
Until the .vqi Pillow plugin is importable, .vqi decoding is timed as
decode_indexed followed by Pillow's own palette-to-RGB conversion (the same work).

    python tools/bench_lossless.py [--colors 2 4 16 64 256] [--repeats 15] [--image a.png ...]
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from bench_images import colour_photos
from PIL import Image

import vqformat
from vqformat.format.methods import COMPRESSION_METHODS as METHODS

Decoder = Callable[[bytes], None]

try:
    from vqformat import pillow_plugin  # noqa: F401  (registers the .vqi format)

    VQI_THROUGH_PILLOW = True
except ImportError:
    VQI_THROUGH_PILLOW = False


def pngquant(pixels: np.ndarray, colors: int, workdir: Path) -> bytes:
    source, target = workdir / "in.png", workdir / "out.png"
    Image.fromarray(pixels).save(source)
    command = ["pngquant", "--speed", "1", "--nofs", "--force", "-o", str(target), str(colors)]
    subprocess.run([*command, str(source)], check=True)
    return target.read_bytes()


def pillow_bytes(image: Image.Image, format_name: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, format_name, **options)
    return out.getvalue()


def decode_with_pillow(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        image.convert("RGB")


def decode_vqi(data: bytes) -> None:
    if VQI_THROUGH_PILLOW:
        decode_with_pillow(data)
        return
    palette, indices = vqformat.decode_indexed(data)
    height, width = indices.shape
    image = Image.frombuffer("P", (width, height), indices.tobytes(), "raw", "P", 0, 1)
    image.putpalette(palette.tobytes(), "RGB")
    image.convert("RGB")


def decode_times(files: dict[str, tuple[bytes, Decoder]], repeats: int) -> dict[str, list[float]]:
    """Seconds per decode, the formats taken in turn each round so load spikes hit all alike."""
    times: dict[str, list[float]] = {key: [] for key in files}
    for _ in range(repeats):
        for key, (data, decode) in files.items():
            start = time.perf_counter()
            decode(data)
            times[key].append(time.perf_counter() - start)
    return times


def candidates(png8: bytes) -> dict[str, tuple[bytes, Decoder]]:
    """Every lossless file of one palette image, with the function that decodes it."""
    image = Image.open(io.BytesIO(png8))
    image.load()
    palette_size = len(image.getpalette()) // 3
    palette = np.array(image.getpalette(), dtype=np.uint8).reshape(palette_size, 3)
    indices = np.asarray(image)
    colors = int(indices.max()) + 1
    files = {
        "png8-pngquant": (png8, decode_with_pillow),
        "png8-optimize": (pillow_bytes(image, "PNG", optimize=True), decode_with_pillow),
        "gif": (pillow_bytes(image, "GIF"), decode_with_pillow),
        "webp-lossless": (
            pillow_bytes(image, "WEBP", lossless=True, method=6, quality=100),
            decode_with_pillow,
        ),
    }
    for name in METHODS:
        data = vqformat.encode_indexed(palette[:colors], indices, compression=name)
        assert np.array_equal(vqformat.decode_indexed(data)[1], indices)
        files[f"vqi-{name}"] = (data, decode_vqi)
    return files


def measure(
    colors: int, repeats: int, workdir: Path, photos: dict[str, np.ndarray]
) -> dict[str, dict[str, list[float]]]:
    """Per format: byte and time ratios to PNG-8 and WebP, one entry per photo."""
    table: dict[str, dict[str, list[float]]] = {}
    for name, pixels in photos.items():
        files = candidates(pngquant(pixels, colors, workdir))
        sizes = {key: len(data) for key, (data, _) in files.items()}
        times = decode_times(files, repeats)
        png8 = ("png8-pngquant", "png8-optimize")
        png_bytes = min(sizes[key] for key in png8)
        png_median = min(np.median(times[key]) for key in png8)
        png_best = min(min(times[key]) for key in png8)
        pixel_count = pixels.shape[0] * pixels.shape[1]
        for key in files:
            row = table.setdefault(key, {})
            row.setdefault("bits/px", []).append(8 * sizes[key] / pixel_count)
            row.setdefault("bytes/png8", []).append(sizes[key] / png_bytes)
            row.setdefault("bytes/webp", []).append(sizes[key] / sizes["webp-lossless"])
            row.setdefault("ms", []).append(1e3 * np.median(times[key]))
            row.setdefault("time/png8", []).append(np.median(times[key]) / png_median)
            row.setdefault("best/png8", []).append(min(times[key]) / png_best)
        print(f"  k={colors} {name}: PNG-8 {png_bytes} B, {1e3 * png_median:.2f} ms", flush=True)
    return table


def report(colors: int, table: dict[str, dict[str, list[float]]], names: list[str]) -> None:
    columns = ["bits/px", "bytes/png8", "bytes/webp", "ms", "time/png8", "best/png8"]
    print(f"\nk = {colors}: medians over {len(names)} photos")
    print(f"{'format':22}" + "".join(f"{c:>12}" for c in columns))
    for key, row in table.items():
        print(f"{key:22}" + "".join(f"{np.median(row[c]):12.3f}" for c in columns))
    print(f"\nk = {colors}: worst photo of each ratio")
    worst = ["bytes/png8", "bytes/webp", "time/png8"]
    print(f"{'format':22}" + "".join(f"{c:>28}" for c in worst))
    for key, row in table.items():
        cells = (f"{max(row[c]):.3f} {names[int(np.argmax(row[c]))][-14:]:>14}" for c in worst)
        print(f"{key:22}" + "".join(f"{cell:>28}" for cell in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--colors", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--image", nargs="*", default=[], help="more image files to bench")
    args = parser.parse_args()
    if not shutil.which("pngquant"):
        raise SystemExit("pngquant is not installed (apt-get install pngquant)")
    print(f".vqi decoded through {'Pillow' if VQI_THROUGH_PILLOW else 'decode_indexed + Pillow'}")
    photos = colour_photos(args.image)
    with tempfile.TemporaryDirectory() as workdir:
        for colors in args.colors:
            report(colors, measure(colors, args.repeats, Path(workdir), photos), list(photos))


if __name__ == "__main__":
    main()
