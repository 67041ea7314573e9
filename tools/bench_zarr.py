"""Zarr stores of an image stack: vqi (lossy) against lossless and JPEG chunk codecs.

The stack is frames of one scene (shifted crops of scikit-learn's china.jpg) and crops
of an unrelated photo (flower.jpg), one image a chunk. Prints store bytes, write and
read time and PSNR for each codec; codecs that are not installed or fail are skipped.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from sklearn.datasets import load_sample_image

from vqformat import dataset
from vqformat.zarr_codec import VQICodec, store_psnr


def image_stack(count: int, size: int) -> np.ndarray:
    """Half shifted crops of one scene (consecutive frames), half of another photo."""
    china, flower = load_sample_image("china.jpg"), load_sample_image("flower.jpg")
    frames = [
        china[10 + 3 * n : 10 + 3 * n + size, 40 + 5 * n : 40 + 5 * n + size]
        for n in range(count // 2)
    ]
    others = [
        flower[(7 * n) % 100 : (7 * n) % 100 + size, (11 * n) % 200 : (11 * n) % 200 + size]
        for n in range(count - count // 2)
    ]
    return np.stack(frames + others)


def candidates(stack: np.ndarray) -> dict[str, dict[str, Any]]:
    """Name -> create_array keywords; imagecodecs codecs go in v2 arrays as compressors."""
    out: dict[str, dict[str, Any]] = {}
    for k in (16, 256):
        out[f"vqi k={k}, per-chunk palette"] = {
            "serializer": VQICodec(colors=k),
            "compressors": None,
        }
        palette = dataset.fit_palette(stack, colors=k)
        out[f"vqi k={k}, shared palette"] = {
            "serializer": VQICodec(palette=palette),
            "compressors": None,
        }
    out["blosc zstd (lossless)"] = {
        "compressors": zarr.codecs.BloscCodec(cname="zstd", clevel=5, shuffle="bitshuffle")
    }
    try:
        from imagecodecs import numcodecs as ic
    except ImportError:
        return out
    ic.register_codecs(verbose=False)  # so that reading the v2 arrays finds them
    for name, make in (
        ("PNG (lossless)", lambda: ic.Png()),
        ("QOI (lossless)", lambda: ic.Qoi()),
        ("WebP lossless", lambda: ic.Webp(lossless=True)),
        ("JPEG q=90", lambda: ic.Jpeg(level=90)),
        ("JPEG q=75", lambda: ic.Jpeg(level=75)),
    ):
        try:
            out[name] = {"compressors": make(), "filters": None, "zarr_format": 2}
        except (ValueError, ImportError):
            continue
    return out


def measure(
    stack: np.ndarray, folder: Path, options: dict[str, Any]
) -> tuple[int, float, float, float]:
    path = folder / "store.zarr"
    shutil.rmtree(path, ignore_errors=True)
    start = time.perf_counter()
    array = zarr.create_array(
        path, shape=stack.shape, chunks=(1, *stack.shape[1:]), dtype="uint8", **options
    )
    array[:] = stack
    write = time.perf_counter() - start
    start = time.perf_counter()
    zarr.open_array(path)[:]
    read = time.perf_counter() - start
    size = sum(file.stat().st_size for file in path.rglob("*") if file.is_file())
    return size, write, read, store_psnr(zarr.open_array(path), stack)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--size", type=int, default=256, help="side of each square image")
    args = parser.parse_args()
    stack = image_stack(args.images, args.size)
    raw = stack.nbytes
    print(f"{len(stack)} images of {stack.shape[1:]} uint8, {raw} raw bytes, one image a chunk")
    print(f"{'codec':32} {'bytes':>10} {'ratio':>6} {'write s':>8} {'read s':>7} {'PSNR dB':>8}")
    with tempfile.TemporaryDirectory() as folder:
        for name, options in candidates(stack).items():
            try:
                size, write, read, psnr = measure(stack, Path(folder), options)
            except Exception as error:  # a codec that fails is reported and skipped
                print(f"{name:32} skipped: {error}")
                continue
            print(
                f"{name:32} {size:>10} {raw / size:>6.2f} {write:>8.2f} {read:>7.2f} {psnr:>8.2f}"
            )


if __name__ == "__main__":
    main()
