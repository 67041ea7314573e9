"""Palette quality and encode speed of vqi against its peers, measured in the same run.

For each palette size: vqi (timed as fit + assign + bit packing; its file size, with
the default compression, measured untimed), vqi-encode-file (the whole
``vqformat.encode`` call, compression included), scikit-learn KMeans(k, n_init=1) on
all pixels (palette stored as .vqi), libimagequant (the ``imagequant`` package; timed
quantization only, PNG written untimed for its size), the pngquant CLI (``--speed 1
--nofs``; wall time including process start and PNG I/O) and Pillow's quantizers (PNG
size). Peers that are not installed are skipped. Times are medians of ``--repeats``
runs (KMeans on all pixels, being slow, of ``--kmeans-repeats``). The same tables for
the grey photos (as RGB with equal channels), then tables of dithering (PSNR, blurred PSNR, SSIM;
vqi, pngquant and libimagequant, dithered and not), of transparency (RGBA images
composited over black and white: PSNR, blurred PSNR, SSIM, entries of alpha 0), of fitting in
CIELAB and of grey strategies at k = 8, and a rate-distortion plot (bits per pixel
against PSNR, medians over the colour photos).

    python tools/bench.py [--colors 16 64 256] [--repeats 3] [--plot rd.png]
    python tools/bench.py --only dither   # or alpha: that table alone
    python tools/bench.py --only dither --images-only --image a.png b.png  # other photos
    python tools/bench.py --only large    # k = 1024..65536 against libimagequant
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from bench_images import colour_photos, grey_photos
from PIL import Image, ImageDraw, features

import vqformat
from vqformat.format import bitpack
from vqformat.format.container import bits_for_colors
from vqformat.quantizer import palette as palette_fitting


@dataclass(frozen=True)
class Result:
    seconds: float
    psnr: float
    size: int  # bytes of the tool's output file
    ssim: float


Encoder = Callable[[np.ndarray, int], tuple[np.ndarray, int]]
"""image, colours -> (reconstructed image, bytes of the encoded file)."""


def psnr(original: np.ndarray, decoded: np.ndarray) -> float:
    error = np.mean((original.astype(np.float64) - decoded) ** 2)
    return float("inf") if error == 0 else 10 * np.log10(255**2 / error)


def ssim(original: np.ndarray, decoded: np.ndarray) -> float:
    """scikit-image's structural similarity over the channels (0..255 data)."""
    from skimage.metrics import structural_similarity

    axis = 2 if original.ndim == 3 else None
    return float(
        structural_similarity(
            np.asarray(original, np.float64),
            np.asarray(decoded, np.float64),
            channel_axis=axis,
            data_range=255,
        )
    )


class _untimed:
    """Work inside this context (decoding, writing a file only for its size) is
    subtracted from the encoder's time by ``measure``."""

    spent = 0.0

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        _untimed.spent += time.perf_counter() - self.start


def measure(encoder: Encoder, image: np.ndarray, colors: int, repeats: int) -> Result:
    times = []
    for _ in range(repeats):
        excluded = _untimed.spent
        start = time.perf_counter()
        decoded, size = encoder(image, colors)
        times.append(time.perf_counter() - start - (_untimed.spent - excluded))
    return Result(statistics.median(times), psnr(image, decoded), size, ssim(image, decoded))


def gain(score: float, reference: float) -> float:
    """How far a score is above the reference (dB of PSNR, or SSIM); 0 when both are
    equal, as two exact images' infinite PSNRs are."""
    return 0.0 if score == reference else score - reference


# --- encoders: each returns what it decoded to and its file size -------------------


def encode_vqi(image: np.ndarray, colors: int) -> tuple[np.ndarray, int]:
    """Timed as the issue defines encoding: fit + assign + bit packing (the file's
    size, with the default compression, is measured untimed)."""
    palette, indices = vqformat.quantize(image, colors)
    bitpack.pack(indices, bits_for_colors(len(palette)))
    with _untimed():
        return palette[indices], len(vqformat.encode_indexed(palette, indices))


def encode_vqi_file(image: np.ndarray, colors: int, dither: float = 0.0) -> tuple[np.ndarray, int]:
    """The whole ``vqformat.encode`` call: fit, assign and the default compression."""
    data = vqformat.encode(image, colors, dither=dither)
    with _untimed():
        return vqformat.decode(data), len(data)


def encode_kmeans(image: np.ndarray, colors: int) -> tuple[np.ndarray, int]:
    from sklearn.cluster import KMeans

    pixels = image.reshape(-1, image.shape[-1])
    model = KMeans(colors, n_init=1, random_state=0).fit(pixels.astype(np.float32))
    palette = np.clip(np.rint(model.cluster_centers_), 0, 255).astype(np.uint8)
    indices = model.labels_.reshape(image.shape[:2])
    data = vqformat.encode_indexed(palette, indices)
    with _untimed():
        return palette[indices], len(data)


def _png_size(image: Image.Image) -> int:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.tell()


def encode_libimagequant(
    image: np.ndarray, colors: int, dither: float = 0.0
) -> tuple[np.ndarray, int]:
    """RGB or RGBA through the ``imagequant`` package at dithering level ``dither``."""
    import imagequant

    height, width, channels = image.shape
    rgba = image if channels == 4 else np.dstack([image, np.full((height, width), 255, np.uint8)])
    indices, palette = imagequant.quantize_raw_rgba_bytes(
        np.ascontiguousarray(rgba).tobytes(),
        width,
        height,
        dithering_level=dither,
        max_colors=colors,
    )
    with _untimed():
        entries = np.array(palette, np.uint8).reshape(-1, 4)[:, :channels]
        index_image = Image.frombytes("P", (width, height), indices)
        index_image.putpalette(entries.tobytes(), "RGBA" if channels == 4 else "RGB")
        decoded = entries[np.frombuffer(indices, np.uint8)].reshape(image.shape)
        return decoded, _png_size(index_image)


def encode_pngquant(image: np.ndarray, colors: int, dither: bool = False) -> tuple[np.ndarray, int]:
    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder, "in.png"), Path(folder, "out.png")
        with _untimed():
            Image.fromarray(image).save(source, compress_level=1)
        mode = "RGBA" if image.shape[-1] == 4 else "RGB"
        command = ["pngquant", "--speed", "1", "--force", "--output", str(target)]
        command += [] if dither else ["--nofs"]
        subprocess.run([*command, str(colors), str(source)], check=True)
        with _untimed():
            return np.asarray(Image.open(target).convert(mode)), target.stat().st_size


def pillow_encoder(method: Image.Quantize) -> Encoder:
    def encode(image: np.ndarray, colors: int) -> tuple[np.ndarray, int]:
        quantized = Image.fromarray(image).quantize(colors, method, dither=Image.Dither.NONE)
        with _untimed():
            return np.asarray(quantized.convert("RGB")), _png_size(quantized)

    return encode


def _importable(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def available_encoders(skip_kmeans: bool) -> dict[str, Encoder]:
    encoders: dict[str, Encoder] = {"vqi": encode_vqi, "vqi-encode-file": encode_vqi_file}
    if not skip_kmeans:
        encoders["sklearn-kmeans"] = encode_kmeans
    if _importable("imagequant"):
        encoders["libimagequant"] = encode_libimagequant
    if shutil.which("pngquant"):
        encoders["pngquant"] = encode_pngquant
    encoders["pil-mediancut"] = pillow_encoder(Image.Quantize.MEDIANCUT)
    encoders["pil-octree"] = pillow_encoder(Image.Quantize.FASTOCTREE)
    if features.check("libimagequant"):
        encoders["pil-libimagequant"] = pillow_encoder(Image.Quantize.LIBIMAGEQUANT)
    return encoders


# --- colour tables -------------------------------------------------------------

Results = dict[str, dict[str, Result]]  # encoder -> image -> result


def _ratio_columns(result: Result, peers: dict[str, Result]) -> str:
    cells = []
    for peer in ("pngquant", "libimagequant"):
        if peer in peers:
            ratio = result.seconds / peers[peer].seconds
            cells.append(f"{ratio:7.2f}x {gain(result.psnr, peers[peer].psnr):+6.2f}")
        else:
            cells.append(f"{'-':>15}")
    return "  ".join(cells)


def print_table(colors: int, results: Results, photos: dict[str, np.ndarray]) -> None:
    print(f"\n## k = {colors}")
    header = (
        f"{'image':<10} {'encoder':<18} {'seconds':>8} {'PSNR':>7} {'SSIM':>6} "
        f"{'bytes':>8} {'bpp':>6}"
    )
    print(header + "   time/dB vs pngquant  time/dB vs libimagequant")
    for name, image in photos.items():
        peers = {encoder: rows[name] for encoder, rows in results.items()}
        for encoder, result in peers.items():
            bpp = 8 * result.size / (image.shape[0] * image.shape[1])
            print(
                f"{name:<10} {encoder:<18} {result.seconds:8.3f} {result.psnr:7.2f} "
                f"{result.ssim:6.4f} {result.size:8d} {bpp:6.3f}   {_ratio_columns(result, peers)}"
            )
    print("median over images (ratios: median of the per-image ratios)")
    for encoder, rows in results.items():
        print(f"{'median':<10} {encoder:<18} {_median_row(rows, results, photos)}")


def _median_row(rows: dict[str, Result], results: Results, photos: dict[str, np.ndarray]) -> str:
    bpp = [8 * rows[n].size / (photos[n].shape[0] * photos[n].shape[1]) for n in rows]
    cells = [
        f"{statistics.median(r.seconds for r in rows.values()):8.3f}",
        f"{statistics.median(r.psnr for r in rows.values()):7.2f}",
        f"{statistics.median(r.ssim for r in rows.values()):6.4f}",
        f"{statistics.median(r.size for r in rows.values()):8.0f}",
        f"{statistics.median(bpp):6.3f}  ",
    ]
    for peer in ("pngquant", "libimagequant"):
        if peer in results:
            ratios = [rows[n].seconds / results[peer][n].seconds for n in rows]
            gains = [gain(rows[n].psnr, results[peer][n].psnr) for n in rows]
            cells.append(f"{statistics.median(ratios):7.2f}x {statistics.median(gains):+6.2f}")
    return " ".join(cells)


def print_verdict(colors: int, results: Results) -> None:
    """The issue's targets, as measured in this run."""
    vqi = results["vqi"]
    median = lambda rows: statistics.median(r.psnr for r in rows.values())  # noqa: E731
    lines = []
    if "pngquant" in results:
        difference = gain(median(vqi), median(results["pngquant"]))
        lines.append(f"median PSNR vs pngquant {difference:+.2f} dB (target >= +0.30)")
    if "sklearn-kmeans" in results:
        worst = min(gain(vqi[n].psnr, results["sklearn-kmeans"][n].psnr) for n in vqi)
        speed = statistics.median(
            results["sklearn-kmeans"][n].seconds / vqi[n].seconds for n in vqi
        )
        lines.append(f"worst image vs KMeans {worst:+.2f} dB (target >= -0.05)")
        lines.append(f"KMeans/vqi time {speed:.1f}x (target >= 10 at k = 256)")
    if "libimagequant" in results:
        for name in ("vqi", "vqi-encode-file"):
            ratio = statistics.median(
                r.seconds for r in results[name].values()
            ) / statistics.median(r.seconds for r in results["libimagequant"].values())
            lines.append(f"median time {name}/libimagequant {ratio:.2f}x (target <= 1.5)")
    print(f"k = {colors}: " + "; ".join(lines))


# --- dithering table ---------------------------------------------------------------


def blurred(image: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    """The image (H, W) or (H, W, C) as float64 after a Gaussian blur across its rows
    and columns."""
    from scipy.ndimage import gaussian_filter

    spatial = (sigma, sigma, 0) if image.ndim == 3 else sigma
    return gaussian_filter(np.asarray(image, np.float64), spatial)


def blurred_psnr(original: np.ndarray, decoded: np.ndarray) -> float:
    """PSNR after a Gaussian blur of both images: error as seen from a distance, where
    error diffusion pays off (plain PSNR penalises it)."""
    return psnr(blurred(original), blurred(decoded))


def dither_encoders() -> dict[str, Encoder]:
    """Undithered and dithered peers, for RGB and RGBA alike."""
    encoders = {
        "vqi": encode_vqi_file,
        "vqi --dither": lambda image, colors: encode_vqi_file(image, colors, dither=1.0),
    }
    if shutil.which("pngquant"):
        encoders["pngquant --nofs"] = encode_pngquant
        encoders["pngquant (dithered)"] = lambda image, colors: encode_pngquant(
            image, colors, dither=True
        )
    if _importable("imagequant"):
        encoders["libimagequant"] = encode_libimagequant
        encoders["libimagequant (dithered)"] = lambda image, colors: encode_libimagequant(
            image, colors, dither=1.0
        )
    return encoders


def print_dither_table(
    photos: dict[str, np.ndarray], colors_list: list[int], title: str = "photos"
) -> None:
    """Per k and encoder: medians over the photos (seconds: of each photo's one run,
    the whole encode or CLI call), and the photos where vqi is furthest below pngquant."""
    print(f"\n## dithering: medians over the {title} of PSNR, blurred PSNR (sigma 1.5), SSIM, bpp")
    print(f"photos: {', '.join(f'{n} {i.shape[1]}x{i.shape[0]}' for n, i in photos.items())}")
    encoders = dither_encoders()
    for colors in colors_list:
        print(
            f"\nk = {colors}: {'encoder':<26} {'PSNR':>7} {'blurred':>8} {'SSIM':>7} {'bpp':>6}"
            f" {'seconds':>8}"
        )
        table = {}
        for name, encoder in encoders.items():
            table[name] = {}
            for image_name, image in photos.items():
                start = time.perf_counter()
                decoded, size = encoder(image, colors)
                seconds = time.perf_counter() - start
                bpp = 8 * size / (image.shape[0] * image.shape[1])
                table[name][image_name] = (
                    psnr(image, decoded),
                    blurred_psnr(image, decoded),
                    ssim(image, decoded),
                    bpp,
                    seconds,
                )
            medians = [statistics.median(c) for c in zip(*table[name].values(), strict=True)]
            print(
                f"{'':>9} {name:<26} {medians[0]:7.2f} {medians[1]:8.2f} "
                f"{medians[2]:7.4f} {medians[3]:6.3f} {medians[4]:8.3f}"
            )
        _print_margins(table, "vqi --dither", "pngquant (dithered)", ("blurred", 1), ("SSIM", 2))
        _print_margins(table, "vqi", "pngquant --nofs", ("PSNR", 0), ("SSIM", 2))


THUMBNAIL_SIZE = 160


def thumbnails(photos: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The photos scaled down (Lanczos) to fit ``THUMBNAIL_SIZE`` pixels, as a page's
    previews are: detail in nearly every pixel, and ten to twenty thousand colours."""
    scaled = {}
    for name, photo in photos.items():
        image = Image.fromarray(photo)
        image.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE), Image.Resampling.LANCZOS)
        scaled[name] = np.asarray(image)
    return scaled


def print_dither_tables(photos: dict[str, np.ndarray], colors_list: list[int]) -> None:
    """The dithering table on the photos, then on their thumbnails."""
    print_dither_table(photos, colors_list)
    print_dither_table(thumbnails(photos), colors_list, f"{THUMBNAIL_SIZE}-pixel thumbnails")


def _print_margins(
    table: dict[str, dict[str, tuple[float, ...]]], ours: str, peer: str, *metrics: tuple[str, int]
) -> None:
    """Per metric, the margins of ``ours`` over ``peer`` image by image: the least (and
    where), their median, and on how many images ``ours`` is level or above. With few
    images a median of each encoder's scores can flip on one image's 0.001; the paired
    margins show whether that is a trend."""
    if peer not in table:
        return
    cells = []
    for label, column in metrics:
        margins = {n: gain(table[ours][n][column], table[peer][n][column]) for n in table[ours]}
        worst = min(margins, key=margins.get)
        level = sum(margin >= 0 for margin in margins.values())
        middle = statistics.median(margins.values())
        cells.append(
            f"{label} worst {margins[worst]:+.4f} ({worst}), median {middle:+.4f},"
            f" {level}/{len(margins)} level or above"
        )
    print(f"{'':>9} {ours} - {peer}: " + "; ".join(cells))


# --- transparency table ------------------------------------------------------------


def transparent_images(photos: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """RGBA test images: photos in a soft-edged disc and under a soft vertical fade,
    with random colours under alpha 0; a sprite with hard edges and garbage under
    alpha 0; antialiased icons drawn at 4x and downsampled; skimage's logo."""
    rng = np.random.default_rng(0)
    images = {}
    for name, photo in list(photos.items())[:3]:
        height, width = photo.shape[:2]
        y, x = np.mgrid[0:height, 0:width]
        radius = np.hypot((y - height / 2) / height, (x - width / 2) / width) * 2
        disc = np.clip((0.85 - radius) / 0.25, 0, 1)
        fade = np.clip(1.2 - 1.6 * y / height, 0, 1)
        for shape, alpha in (("disc", disc), ("fade", fade)):
            images[f"{name}-{shape}"] = _with_alpha(photo, alpha, rng)
    images["sprite"] = _sprite(rng)
    images["icons"] = _icons()
    from skimage import data

    images["skimage-logo"] = data.logo()  # RGBA, shipped with scikit-image
    return images


def _with_alpha(photo: np.ndarray, alpha: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    coverage = np.rint(alpha * 255).astype(np.uint8)
    rgb = photo.copy()
    rgb[coverage == 0] = rng.integers(0, 256, (int(np.sum(coverage == 0)), 3))
    return np.dstack([rgb, coverage])


def _sprite(rng: np.random.Generator) -> np.ndarray:
    """A 256x256 sprite: blocky shapes in a few shades, noise under alpha 0."""
    image = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((8, 8, 56, 56), fill=(230, 180, 40, 255), outline=(120, 60, 10, 255), width=3)
    draw.rectangle((22, 24, 28, 32), fill=(20, 20, 20, 255))
    draw.rectangle((36, 24, 42, 32), fill=(20, 20, 20, 255))
    draw.polygon([(20, 40), (44, 40), (32, 50)], fill=(200, 40, 40, 255))
    pixels = np.array(image.resize((256, 256), Image.Resampling.NEAREST))
    shade = rng.normal(0, 8, pixels.shape[:2])[..., None]
    pixels[..., :3] = np.clip(pixels[..., :3] + shade, 0, 255).astype(np.uint8)
    hidden = pixels[..., 3] == 0
    pixels[hidden, :3] = rng.integers(0, 256, (int(hidden.sum()), 3))
    return pixels


def _icons() -> np.ndarray:
    """Antialiased shapes and gradients drawn at 4x, downsampled to 256x256."""
    big = Image.new("RGBA", (1024, 1024), (0, 0, 0, 0))
    draw = ImageDraw.Draw(big)
    for row in range(4):
        for column in range(4):
            left, top = 16 + column * 256, 16 + row * 256
            colour = (60 * column + 40, 50 * row + 60, 220 - 50 * column, 255)
            box = (left, top, left + 224, top + 224)
            if (row + column) % 3 == 0:
                draw.ellipse(box, fill=colour, outline=(20, 20, 20, 255), width=12)
            elif (row + column) % 3 == 1:
                draw.rounded_rectangle(box, radius=48, fill=(*colour[:3], 170))
            else:
                draw.polygon(
                    [(left + 112, top), (left + 224, top + 224), (left, top + 224)], fill=colour
                )
            draw.line(
                (left + 30, top + 190, left + 190, top + 30), fill=(255, 255, 255, 230), width=16
            )
    return np.asarray(big.resize((256, 256), Image.Resampling.LANCZOS))


def composites(rgba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The image over black and over white."""
    values = rgba.astype(np.float64)
    alpha = values[..., 3:] / 255
    over_black = values[..., :3] * alpha
    return over_black, over_black + 255 * (1 - alpha)


def composite_scores(original: np.ndarray, decoded: np.ndarray) -> tuple[float, float, float]:
    """(PSNR of both composites together, the same with each composite blurred, mean
    SSIM of the two composites): the blurred PSNR judges dithering, as for photos."""
    originals, decodeds = composites(original), composites(decoded)
    return (
        psnr(np.concatenate(originals), np.concatenate(decodeds)),
        psnr(
            np.concatenate([blurred(image) for image in originals]),
            np.concatenate([blurred(image) for image in decodeds]),
        ),
        float(np.mean([ssim(*pair) for pair in zip(originals, decodeds, strict=True)])),
    )


def print_alpha_table(images: dict[str, np.ndarray], colors_list: list[int]) -> None:
    """Composited PSNR (plain and blurred) and SSIM and entries of alpha 0 per encoder:
    medians over the images and the image where vqi is furthest below pngquant."""
    print("\n## transparency: composited over black and white (medians); alpha-0 entries (max)")
    print(f"images: {', '.join(f'{n} {i.shape[1]}x{i.shape[0]}' for n, i in images.items())}")
    encoders = dither_encoders()
    for colors in colors_list:
        print(
            f"\nk = {colors}: {'encoder':<26} {'PSNR':>7} {'blurred':>8} {'SSIM':>7} {'alpha-0':>8}"
        )
        table = {}
        for name, encoder in encoders.items():
            table[name] = {}
            for image_name, image in images.items():
                decoded, _ = encoder(image, colors)
                entries = np.unique(decoded.reshape(-1, 4), axis=0)
                table[name][image_name] = (
                    *composite_scores(image, decoded),
                    int(np.sum(entries[:, 3] == 0)),
                )
            columns = list(zip(*table[name].values(), strict=True))
            print(
                f"{'':>9} {name:<26} {statistics.median(columns[0]):7.2f} "
                f"{statistics.median(columns[1]):8.2f} {statistics.median(columns[2]):7.4f} "
                f"{max(columns[3]):8d}"
            )
        _print_margins(table, "vqi", "pngquant --nofs", ("PSNR", 0), ("SSIM", 2))
        _print_margins(
            table, "vqi --dither", "pngquant (dithered)", ("PSNR", 0), ("blurred", 1), ("SSIM", 2)
        )


# --- colour space table ------------------------------------------------------------


def lab_fit(image: np.ndarray, colors: int) -> np.ndarray:
    """The experiment: k-means on the distinct colours in CIELAB (weighted by counts),
    palette rounded back to RGB, each pixel mapped to the entry nearest in CIELAB."""
    from scipy.spatial import cKDTree
    from skimage.color import lab2rgb, rgb2lab
    from sklearn.cluster import KMeans

    table = palette_fitting.color_table(image.reshape(-1, 3))
    to_lab = lambda rgb: rgb2lab(rgb[:, None, :] / 255.0)[:, 0, :]  # noqa: E731
    model = KMeans(colors, n_init=1, random_state=0, tol=1e-3)
    model.fit(to_lab(table.colors), sample_weight=table.counts)
    rgb = lab2rgb(model.cluster_centers_[:, None, :])[:, 0, :]
    palette = np.unique(np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8), axis=0)
    _, nearest = cKDTree(to_lab(palette)).query(to_lab(table.colors))
    return palette[nearest][table.inverse].reshape(image.shape)


def mean_delta_e(original: np.ndarray, decoded: np.ndarray) -> float:
    """Mean CIEDE2000 colour difference per pixel."""
    from skimage.color import deltaE_ciede2000, rgb2lab

    return float(np.mean(deltaE_ciede2000(rgb2lab(original), rgb2lab(decoded))))


def print_colour_space_table(photos: dict[str, np.ndarray], colors_list: list[int]) -> None:
    if not _importable("skimage"):
        return
    print("\n## colour space of the fit: medians over the photos of PSNR and mean CIEDE2000")
    print(f"{'k':>4} {'RGB (vqi) PSNR':>16} {'dE00':>7} {'CIELAB PSNR':>13} {'dE00':>7}")
    for colors in colors_list:
        rows = []
        for image in photos.values():
            rgb_fit = vqformat.decode(vqformat.encode(image, colors))
            lab = lab_fit(image, colors)
            rows.append(
                (
                    psnr(image, rgb_fit),
                    mean_delta_e(image, rgb_fit),
                    psnr(image, lab),
                    mean_delta_e(image, lab),
                )
            )
        medians = [statistics.median(column) for column in zip(*rows, strict=True)]
        print(
            f"{colors:>4} {medians[0]:16.2f} {medians[1]:7.3f} {medians[2]:13.2f} {medians[3]:7.3f}"
        )


# --- grey table -----------------------------------------------------------------


def grey_methods() -> dict[str, Callable[[np.ndarray, int], np.ndarray]]:
    """Name -> (image, k) -> decoded image, for the 1-channel comparison."""
    from sklearn.cluster import KMeans
    from sklearn.preprocessing import KBinsDiscretizer

    def kbins(strategy: str) -> Callable[[np.ndarray, int], np.ndarray]:
        def run(image: np.ndarray, colors: int) -> np.ndarray:
            model = KBinsDiscretizer(
                n_bins=colors, encode="ordinal", strategy=strategy, random_state=0
            )
            column = image.reshape(-1, 1).astype(np.float64)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return model.inverse_transform(model.fit_transform(column)).reshape(image.shape)

        return run

    def lloyd(image: np.ndarray, colors: int) -> np.ndarray:
        column = image.reshape(-1, 1).astype(np.float64)
        model = KMeans(colors, n_init=1, random_state=0).fit(column)
        return model.cluster_centers_[model.labels_].reshape(image.shape)

    def vqi(method: str) -> Callable[[np.ndarray, int], np.ndarray]:
        return lambda image, colors: vqformat.decode(vqformat.encode(image, colors, method=method))

    return {
        "KBins uniform": kbins("uniform"),
        "KBins quantile": kbins("quantile"),
        "KBins kmeans": kbins("kmeans"),
        "KMeans Lloyd": lloyd,
        "vqi uniform": vqi("uniform"),
        "vqi quantile": vqi("quantile"),
        "vqi exact": vqi("kmeans"),
    }


def print_grey_table(photos: dict[str, np.ndarray], colors: int) -> None:
    print(f"\n## grey, k = {colors}: MSE (PSNR) and seconds")
    methods = grey_methods()
    print(f"{'image':<14}" + "".join(f"{name:>24}" for name in methods))
    for name, image in photos.items():
        cells = []
        for method in methods.values():
            start = time.perf_counter()
            decoded = method(image, colors)
            seconds = time.perf_counter() - start
            mse = float(np.mean((image.astype(np.float64) - decoded) ** 2))
            cells.append(f"{mse:8.2f} ({psnr(image, decoded):5.2f}) {seconds:6.3f}s")
        print(f"{name:<14}" + "".join(f"{cell:>24}" for cell in cells))


# --- rate-distortion plot --------------------------------------------------------

PLOT_COLOURS = ["#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"]


def draw_rd_plot(curves: dict[str, list[tuple[float, float]]], path: str) -> None:
    """Median bits per pixel against median PSNR, one polyline per encoder."""
    width, height, margin = 900, 600, 70
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    points = [point for curve in curves.values() for point in curve]
    x_low, x_high = 0.0, max(x for x, _ in points) * 1.05
    y_low, y_high = min(y for _, y in points) - 0.5, max(y for _, y in points) + 0.5

    def to_pixel(x: float, y: float) -> tuple[float, float]:
        return (
            margin + (x - x_low) / (x_high - x_low) * (width - 2 * margin),
            height - margin - (y - y_low) / (y_high - y_low) * (height - 2 * margin),
        )

    draw.rectangle([margin, margin, width - margin, height - margin], outline="black")
    for tick in np.linspace(x_low, x_high, 6):
        px, _ = to_pixel(tick, y_low)
        draw.text((px - 10, height - margin + 8), f"{tick:.2f}", fill="black")
    for tick in np.linspace(y_low, y_high, 6):
        _, py = to_pixel(x_low, tick)
        draw.text((margin - 45, py - 6), f"{tick:.1f}", fill="black")
    draw.text((width / 2 - 60, height - 30), "bits per pixel (median)", fill="black")
    draw.text((10, 20), "PSNR dB (median over photos)", fill="black")
    for number, (name, curve) in enumerate(curves.items()):
        colour = PLOT_COLOURS[number % len(PLOT_COLOURS)]
        pixels = [to_pixel(x, y) for x, y in sorted(curve)]
        draw.line(pixels, fill=colour, width=2)
        for px, py in pixels:
            draw.ellipse([px - 3, py - 3, px + 3, py + 3], fill=colour)
        draw.text((margin + 10, margin + 10 + 16 * number), name, fill=colour)
    image.save(path)


LARGE_COLORS = (1024, 4096, 65536)
LARGE_PHOTOS = ("astronaut", "china")  # 0.26 and 0.27 MP
KMEANS_LARGE_COLORS = (1024, 4096)


def _timed(run: Callable[[], object], repeats: int) -> tuple[list[float], object]:
    """Wall times of ``repeats`` runs and the last run's result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return times, result


def _cli_encode(path: Path, target: Path, *options: str) -> subprocess.CompletedProcess:
    """The whole ``vqi encode`` command, file to file, as a user runs it."""
    command = [sys.executable, "-m", "vqformat.cli", "encode", "-f", "-q", *options]
    return subprocess.run([*command, str(path), "-o", str(target)], capture_output=True)


def _times(times: list[float]) -> str:
    return f"{statistics.median(times):7.2f} {max(times):6.2f}"


def print_large_table(photos: dict[str, np.ndarray], repeats: int, skip_kmeans: bool) -> None:
    """Large palettes against libimagequant at k = 256, per photo: the palette fit alone
    and the whole ``vqi encode`` command (process start, PNG read, fit, write), their
    ratios to libimagequant's quantization time (median over ``repeats``, measured
    interleaved so that all see the same load; worst case beside), PSNR, and
    scikit-learn's KMeans(k, n_init=1) on the weighted distinct colours at 1024 and
    4096 (once: it is slow). Then
    ``--min-psnr`` searches at k = 256: one that is reached and one that is missed."""
    print("\n# large palettes (times: median and worst of the repeats, seconds)")
    header = f"{'photo':<10}{'encoder':<28}{'median':>7} {'worst':>6} {'x liq':>7} {'PSNR':>7}"
    print(header)
    with tempfile.TemporaryDirectory() as folder:
        for name, image in photos.items():
            path = Path(folder, f"{name}.png")
            Image.fromarray(image).save(path, compress_level=1)
            _print_large_rows(name, image, path, Path(folder), repeats, skip_kmeans)


def _print_large_rows(
    name: str, image: np.ndarray, path: Path, folder: Path, repeats: int, skip_kmeans: bool
) -> None:
    pixels = image.reshape(-1, image.shape[-1])
    runs: dict[str, Callable[[], object]] = {
        "libimagequant k=256": lambda: encode_libimagequant(image, 256),
    }
    for colors in LARGE_COLORS:
        runs[f"vqi fit k={colors}"] = lambda c=colors: palette_fitting.fit(pixels, c)
        runs[f"vqi encode k={colors}"] = lambda c=colors: _cli_encode(
            path, folder / f"k{c}.vqi", "-k", str(c)
        )
    for target_db in (30, 40):
        runs[f"vqi encode --min-psnr {target_db}"] = lambda t=target_db: _cli_encode(
            path, folder / f"psnr{t}.vqi", "-k", "256", "--min-psnr", str(t)
        )
    times: dict[str, list[float]] = {label: [] for label in runs}
    results: dict[str, object] = {}
    for _ in range(repeats):  # interleaved: every run sees the same load
        for label, run in runs.items():
            spent, results[label] = _timed(run, 1)
            times[label] += spent
    peer = statistics.median(times["libimagequant k=256"])
    for label, spent in times.items():
        quality = _large_psnr(image, pixels, results[label])
        ratio = statistics.median(spent) / peer
        print(f"{name:<10}{label:<28}{_times(spent)} {ratio:7.1f} {quality}")
    if not skip_kmeans:
        for colors in KMEANS_LARGE_COLORS:
            spent, (decoded, _) = _timed(lambda c=colors: encode_kmeans_weighted(image, c), 1)
            label = f"sklearn KMeans k={colors}"
            print(
                f"{name:<10}{label:<28}{_times(spent)} {spent[0] / peer:7.1f} "
                f"{psnr(image, decoded):7.2f}"
            )


def _large_psnr(image: np.ndarray, pixels: np.ndarray, result: object) -> str:
    """PSNR of a run's output: a fitted palette's, or the file the command wrote."""
    if isinstance(result, tuple):
        return f"{psnr(image, result[0]):7.2f}"
    if isinstance(result, np.ndarray):
        decoded = result[palette_fitting.assign(pixels, result)].reshape(image.shape)
        return f"{psnr(image, decoded):7.2f}"
    if result.returncode == 0:
        return f"{psnr(image, vqformat.decode(Path(result.args[-1]).read_bytes())):7.2f}"
    return f"exit {result.returncode}"


def encode_kmeans_weighted(image: np.ndarray, colors: int) -> tuple[np.ndarray, int]:
    """scikit-learn KMeans(k, n_init=1) on the distinct colours weighted by their
    counts: the objective of k-means on all pixels, at a fraction of the time."""
    from sklearn.cluster import KMeans

    pixels = image.reshape(-1, image.shape[-1])
    table = palette_fitting.color_table(pixels)
    model = KMeans(colors, n_init=1, random_state=0)
    model.fit(table.colors.astype(np.float32), sample_weight=table.counts)
    palette = np.clip(np.rint(model.cluster_centers_), 0, 255).astype(np.uint8)
    return palette[model.labels_[table.inverse]].reshape(image.shape), 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--colors", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--kmeans-repeats", type=int, default=1)
    parser.add_argument("--skip-kmeans", action="store_true", help="omit KMeans on all pixels")
    parser.add_argument("--image", nargs="*", default=[], help="extra colour images")
    parser.add_argument(
        "--images-only", action="store_true", help="use the --image files, not the bench photos"
    )
    parser.add_argument("--grey-image", nargs="*", default=[], help="extra grey images")
    parser.add_argument("--grey-colors", type=int, default=8)
    parser.add_argument(
        "--skip-grey-tables", action="store_true", help="omit the per-k tables of grey photos"
    )
    parser.add_argument("--plot", default="rd.png", help="rate-distortion plot (PNG)")
    parser.add_argument(
        "--only",
        choices=("dither", "alpha", "large"),
        help="run only the dithering, transparency or large-palette table",
    )
    args = parser.parse_args()

    photos = colour_photos(args.image)
    if args.images_only:
        photos = {name: image for name, image in photos.items() if name in args.image}
    if args.only == "dither":
        return print_dither_tables(photos, args.colors)
    if args.only == "alpha":
        return print_alpha_table(transparent_images(photos), args.colors)
    if args.only == "large":
        large = {name: photos[name] for name in LARGE_PHOTOS if name in photos}
        return print_large_table(large or photos, args.repeats, args.skip_kmeans)
    greys = grey_photos(photos, args.grey_image)
    encoders = available_encoders(args.skip_kmeans)
    print(f"photos: {', '.join(f'{n} {i.shape[1]}x{i.shape[0]}' for n, i in photos.items())}")
    print(f"grey: {', '.join(f'{n} {i.shape[1]}x{i.shape[0]}' for n, i in greys.items())}")
    print(f"encoders: {', '.join(encoders)}; times are medians of {args.repeats} runs")
    curves = run_tables(photos, encoders, args)
    if not args.skip_grey_tables:
        print("\n# grey photos, given to every encoder as RGB with equal channels")
        run_tables({n: np.dstack([g, g, g]) for n, g in greys.items()}, encoders, args)
    print_dither_tables(photos, args.colors)
    print_alpha_table(transparent_images(photos), args.colors)
    print_colour_space_table(photos, args.colors)
    print_grey_table(greys, args.grey_colors)
    draw_rd_plot(curves, args.plot)
    print(f"\nrate-distortion plot: {args.plot}")


def run_tables(
    photos: dict[str, np.ndarray], encoders: dict[str, Encoder], args: argparse.Namespace
) -> dict[str, list[tuple[float, float]]]:
    """One table and verdict per palette size; returns each encoder's (bpp, PSNR) medians."""
    curves: dict[str, list[tuple[float, float]]] = {name: [] for name in encoders}
    for colors in args.colors:
        results: Results = {name: {} for name in encoders}
        for image_name, image in photos.items():
            for name, encoder in encoders.items():  # interleaved: same load for all
                repeats = args.kmeans_repeats if name == "sklearn-kmeans" else args.repeats
                results[name][image_name] = measure(encoder, image, colors, repeats)
        print_table(colors, results, photos)
        print_verdict(colors, results)
        for name, rows in results.items():
            bpp = statistics.median(
                8 * rows[n].size / (photos[n].shape[0] * photos[n].shape[1]) for n in rows
            )
            curves[name].append((bpp, statistics.median(r.psnr for r in rows.values())))
    return curves


if __name__ == "__main__":
    main()
