"""Zarr stores of an image stack: vqi against Blosc/zstd and imagecodecs' image codecs.

The stack: ``--frames`` shifted crops of each of scikit-learn's china and flower (frames
of one scene) plus crops of unrelated scikit-image photos, all ``--size`` square RGB,
one image per chunk. Each codec writes a Zarr array (v2 metadata, the codec as the
compressor) to a temporary directory; the table gives the store's bytes, write and
read wall time (one run each) and PSNR against the stack (``store_psnr``). vqi is
timed with a palette per chunk and with one palette for the stack (``fit_palette``,
whose fit is included in the write time), at k = 16 and 256. Codecs that fail on the
stack are skipped.

    python tools/bench_zarr.py [--size 192] [--frames 22]
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numcodecs
import numpy as np
import skimage.data
import zarr
from bench_images import HELD_OUT_PHOTOS, SKIMAGE_IMAGES
from sklearn.datasets import load_sample_image

from vqformat.dataset import fit_palette
from vqformat.zarr_codec import VQI, store_psnr

OTHER_PHOTOS = (*SKIMAGE_IMAGES, *HELD_OUT_PHOTOS, "cat", "colorwheel", "retina")


def _scene_frames(image: np.ndarray, count: int, size: int) -> list[np.ndarray]:
    """Crops moving diagonally across the image, a few pixels a frame."""
    step = max(1, min(image.shape[0] - size, image.shape[1] - size) // count)
    return [image[i * step : i * step + size, i * step : i * step + size] for i in range(count)]


def image_stack(size: int, frames: int) -> np.ndarray:
    images = []
    for name in ("china.jpg", "flower.jpg"):
        images += _scene_frames(load_sample_image(name), frames, size)
    for name in OTHER_PHOTOS:
        photo = getattr(skimage.data, name)()
        top, left = (photo.shape[0] - size) // 2, (photo.shape[1] - size) // 2
        images.append(photo[top : top + size, left : left + size, :3])
    return np.stack(images)


def _image_codecs() -> dict[str, Callable[[], numcodecs.abc.Codec]]:
    codecs: dict[str, Callable[[], numcodecs.abc.Codec]] = {
        "blosc-zstd (raw)": lambda: numcodecs.Blosc("zstd", 5, numcodecs.Blosc.SHUFFLE)
    }
    try:
        from imagecodecs import numcodecs as image_codecs
    except ImportError:
        return codecs
    image_codecs.register_codecs()  # so that reading finds them by id
    codecs["png"] = lambda: image_codecs.Png()
    codecs["qoi"] = lambda: image_codecs.Qoi()
    codecs["webp-lossless"] = lambda: image_codecs.Webp(lossless=True)
    codecs["jpeg q90"] = lambda: image_codecs.Jpeg(level=90)
    return codecs


def _vqi_codecs(stack: np.ndarray) -> dict[str, Callable[[], numcodecs.abc.Codec]]:
    codecs: dict[str, Callable[[], numcodecs.abc.Codec]] = {}
    for colors in (16, 256):
        codecs[f"vqi k={colors} per chunk"] = lambda colors=colors: VQI(colors=colors)
        codecs[f"vqi k={colors} shared"] = lambda colors=colors: VQI(
            palette=fit_palette(stack, colors)
        )
    return codecs


def _store_bytes(path: Path) -> int:
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file())


def measure(name: str, make_codec: Callable[[], numcodecs.abc.Codec], stack, root: Path):
    path = root / name.replace(" ", "_")
    start = time.perf_counter()
    array = zarr.create_array(
        path,
        shape=stack.shape,
        chunks=(1, *stack.shape[1:]),
        dtype="uint8",
        zarr_format=2,
        compressors=make_codec(),
        filters=None,
    )
    array[...] = stack
    written = time.perf_counter() - start
    start = time.perf_counter()
    restored = zarr.open_array(path, mode="r")[...]
    read = time.perf_counter() - start
    return _store_bytes(path), written, read, store_psnr(restored, stack)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--frames", type=int, default=22, help="frames of each scene")
    args = parser.parse_args()
    stack = image_stack(args.size, args.frames)
    print(f"{len(stack)} images of {args.size}x{args.size} RGB, {stack.nbytes} bytes raw\n")
    print(f"| {'codec':<22} | {'bytes':>9} | {'ratio':>6} | write s | read s | PSNR dB  |")
    print(f"|{'-' * 24}|{'-' * 11}|{'-' * 8}|--------:|-------:|---------:|")
    with tempfile.TemporaryDirectory() as root:
        for name, make_codec in {**_image_codecs(), **_vqi_codecs(stack)}.items():
            try:
                size, written, read, psnr = measure(name, make_codec, stack, Path(root))
            except Exception as error:  # a codec that cannot store this stack is skipped
                print(f"| {name:<22} | skipped: {type(error).__name__}: {error}"[:100])
                continue
            shown = "lossless" if math.isinf(psnr) else f"{psnr:.2f}"
            print(
                f"| {name:<22} | {size:>9} | {stack.nbytes / size:>6.1f} | {written:>7.2f} "
                f"| {read:>6.2f} | {shown:>8} |"
            )


if __name__ == "__main__":
    main()
