"""The encoder pipeline: pixels -> palette + indices (the quantizer) -> file (the format).

The only module that knows both layers: it decides, from ``EncodeOptions``, how the
palette is found and where each strip's indices come from, then hands the format layer
a palette and a function giving each strip's indices.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from .errors import VQIError, warn_caller
from .format.writing import Layout, StripIndices, write_to
from .options import EncodeOptions
from .quantizer import palette as palette_fitting
from .quantizer.dither import carried_error, diffuse
from .quantizer.progress import Progress, report, reporting
from .quantizer.streaming import ColorSet, ImageRows, StripAssigner, distinct_colors, sample_pixels
from .quantizer.weights import smoothness_weights

FIT_PIXELS = 1 << 20
"""The palette is fitted on at most this many pixels: all of an image that has no more,
else a uniform sample of this size. Fitting costs memory and time with the distinct
colours it sees, so this bounds the encoder's memory whatever the image size (about
130 MB at worst, a megapixel of pure noise); pixels are then mapped to the palette a
strip at a time. Photos up to a megapixel are fitted on every pixel: sampling a
0.27 MP photo cost about 0.05 dB at 256 colours (tools/bench_large.py)."""


class QualityWarning(UserWarning):
    """``min_psnr`` was not reached even with ``colors`` colours; the result is the best
    palette found. ``reached`` is its PSNR (dB, before any dithering), ``colors`` its size."""

    def __init__(self, reached: float, target: float, colors: int) -> None:
        super().__init__(f"{reached:.2f} dB with {colors} colours is below min_psnr {target:g}")
        self.reached, self.target, self.colors = reached, target, colors


def _warn_below_target(sample: np.ndarray, palette: np.ndarray, target: float) -> None:
    """Tell the caller, through a QualityWarning, that the target was missed."""
    reached = palette_fitting.image_psnr(sample, palette[palette_fitting.assign(sample, palette)])
    if reached < target:
        warn_caller(QualityWarning(reached, target, len(palette)))


def _options(colors: int, keywords: dict[str, Any]) -> EncodeOptions:
    """``EncodeOptions`` from ``encode``'s keywords; an unknown keyword is a TypeError,
    as for any Python function."""
    try:
        return EncodeOptions(colors=colors, **keywords)
    except TypeError:
        unknown = sorted(set(keywords) - set(EncodeOptions.__dataclass_fields__))
        raise TypeError(f"unexpected keyword argument(s): {', '.join(unknown)}") from None


def quantize(
    pixels: np.ndarray, colors: int = 256, **options: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Fit a palette to the pixels and assign each pixel: returns (palette, (H, W) indices).

    Takes ``encode``'s options (``compression`` and ``strip_rows`` are unused). With
    ``min_psnr`` (dB) the palette is the smallest reaching it, ``colors`` at most. With
    ``dither`` (True or a strength 0..1) the pixels are mapped by selective
    Floyd-Steinberg error diffusion instead of each to its nearest entry.
    """
    return quantize_with(pixels, _options(colors, options))


def quantize_with(pixels: Any, options: EncodeOptions) -> tuple[np.ndarray, np.ndarray]:
    """``quantize`` with its options already checked."""
    plan = _plan_indices(ImageRows.of(pixels), options)
    height, width = plan.image.height, plan.image.width
    return plan.palette, plan.strip_indices(0, height).reshape(height, width)


def _fit(
    image: ImageRows, options: EncodeOptions, assign: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """(palette, every pixel's index or None): an image of at most ``FIT_PIXELS`` is
    fitted on every pixel and, with ``assign``, the fit's own assignment is kept; a
    larger one is fitted on a uniform sample of that many (``min_psnr`` is then judged
    on the sample) and mapped strip by strip later.

    When a sample shows few colours the image is scanned (band by band, stopping
    early) so that an image of at most ``colors`` colours keeps them all exactly.
    Colour (RGB) pixels are weighted by their neighbourhood's smoothness
    (``smoothness_weights``; a sample's weights are those of its pixels in the image).
    """
    colors, fit_options = options.colors, options.fit_options()
    weigh = smoothness_weights if _weighs_pixels(image, options) else None
    sample, weights = sample_pixels(image, FIT_PIXELS, options.seed, weigh)
    sampled = len(sample) < image.pixel_count
    if sampled and options.min_psnr is None and ColorSet(image.channels, colors).add(sample):
        exact = distinct_colors(image, colors)
        if exact is not None:
            return exact, None
    if assign and not sampled:
        palette, indices = palette_fitting.quantize(sample, colors, weights=weights, **fit_options)
    else:
        palette = palette_fitting.fit(sample, colors, weights=weights, **fit_options)
        indices = None
    if options.min_psnr is not None:
        _warn_below_target(sample, palette, options.min_psnr)
    return palette, indices


def _weighs_pixels(image: ImageRows, options: EncodeOptions) -> bool:
    """Whether the fit uses smoothness weights: only k-means below ``LARGE_PALETTE``
    colours, on RGB (grey is fitted exactly, alpha as seen, large palettes by merging)."""
    return (
        image.channels == 3
        and options.method == "kmeans"
        and options.colors < palette_fitting.LARGE_PALETTE
    )


@dataclass(frozen=True)
class _IndexPlan:
    """The palette of an image and how each strip of it gets its indices."""

    image: ImageRows
    palette: np.ndarray
    strip_indices: StripIndices


def _plan_indices(image: ImageRows, options: EncodeOptions) -> _IndexPlan:
    """Choose the palette (fitted, or the one given) and the strips' assignment."""
    palette = options.palette
    indices = None
    if palette is None:
        palette, indices = _fit(image, options, assign=not options.dither)
    if palette.shape[1] != image.channels:
        raise VQIError(
            f"palette has {palette.shape[1]} channels but the image has {image.channels}"
        )
    if options.dither:
        return _IndexPlan(image, palette, _dithered_strips(image, palette, options.dither))
    return _IndexPlan(image, palette, _strip_indices(image, palette, indices))


def _strip_indices(
    image: ImageRows, palette: np.ndarray, indices: np.ndarray | None
) -> StripIndices:
    """Where each strip's indices come from: the fit's own assignment when it covered
    every pixel, else each strip mapped to the palette as it is read (and reported:
    an image over ``FIT_PIXELS`` takes long)."""
    if indices is not None:
        width = image.width
        return lambda first, rows: indices[first * width : (first + rows) * width]
    assign = StripAssigner(palette)

    def mapped(first: int, rows: int) -> np.ndarray:
        strip = assign(image.band(first, rows))
        report("mapping the pixels", (first + rows) / image.height)
        return strip

    return mapped


def _dithered_strips(image: ImageRows, palette: np.ndarray, strength: float) -> StripIndices:
    """Error diffusion over the whole image when it is at most ``FIT_PIXELS``, else
    band by band (``_DitheredBands``)."""
    bands = _DitheredBands(image, palette, strength)
    if image.pixel_count > FIT_PIXELS:
        return bands
    return _strip_indices(image, palette, bands(0, image.height))


class _DitheredBands:
    """Strips of an image diffused in bands of about ``FIT_PIXELS``, each band's last
    row passing its error on to the next band's first: memory stays bounded, there are
    no seams, and a numpy step covers as many pixels as in a whole image (one step a
    line of the band: bands of one strip made a 3 MP photo twice as slow). Strips are
    asked for in order; one out of order starts a band afresh."""

    def __init__(self, image: ImageRows, palette: np.ndarray, strength: float) -> None:
        self.image, self.palette, self.strength = image, palette, strength
        self.carry = carried_error(image.width, image.channels)
        self.band_rows = max(1, FIT_PIXELS // image.width)
        self.first, self.indices = 0, np.empty((0, image.width), np.uint16)

    def __call__(self, first: int, rows: int) -> np.ndarray:
        if not self.first <= first <= first + rows <= self.first + len(self.indices):
            self._diffuse(first, -(-self.band_rows // rows) * rows)  # whole strips
        offset = first - self.first
        return self.indices[offset : offset + rows].ravel()

    def _diffuse(self, first: int, rows: int) -> None:
        if first != self.first + len(self.indices):
            self.carry[:] = 0
        rows = min(rows, self.image.height - first)
        pixels = self.image.band(first, rows).reshape(rows, self.image.width, -1)
        self.first = first
        self.indices = diffuse(pixels, self.palette, self.strength, self.carry)
        report("mapping the pixels", (first + rows) / self.image.height)


def _plan_file(pixels: Any, options: EncodeOptions) -> tuple[Layout, _IndexPlan]:
    """Validate the image and the file's shape first (no fitting is wasted on a file
    that cannot be written), then plan the indices."""
    image = ImageRows.of(pixels)
    layout = Layout.of(image.height, image.width, options.compression, options.strip_rows)
    options.metadata().check_channels(image.channels)
    return layout, _plan_indices(image, options)


def _write_plan(out: BinaryIO, layout: Layout, plan: _IndexPlan, options: EncodeOptions) -> None:
    layout.write(out, plan.palette, plan.strip_indices, options.metadata())


def encode(
    pixels: np.ndarray, colors: int = 256, *, progress: Progress | None = None, **options: Any
) -> bytes:
    """Quantize a uint8 image to at most ``colors`` colours and return the .vqi bytes.

    ``pixels`` may be any array-like with ``shape``, ``dtype`` and row slicing, such as
    a ``numpy.memmap``, read a band of rows at a time: images over ``FIT_PIXELS`` are
    fitted on a uniform sample of that many pixels. The options are those of
    ``EncodeOptions``: ``method`` chooses how the palette is fitted, ``compression``
    how the index stream is stored, ``strip_rows`` the strip height; the encoder is
    deterministic for a given ``seed``. ``min_psnr`` asks for the smallest palette
    reaching that PSNR (dB), with ``colors`` the most. ``palette`` (k, C) skips fitting
    and maps every pixel to its nearest entry (``colors``, ``method`` and ``min_psnr``
    are then unused). ``dither`` (True or a strength 0..1) maps the pixels by selective
    Floyd-Steinberg error diffusion instead of each to its nearest entry; a
    ``min_psnr`` target is judged before dithering; when even ``colors`` colours miss
    it, the best palette is used and a ``QualityWarning`` is issued (turn it into an
    error with ``warnings.simplefilter("error", vqformat.QualityWarning)``).
    ``icc_profile``, ``exif``, ``xmp`` (bytes) and ``text`` (a str -> str mapping) are
    stored as metadata chunks. ``progress(stage, fraction)``, if given, is called as the
    slow parts advance (fitting a large palette, mapping an image over ``FIT_PIXELS``),
    to show a progress bar; it is not called for quick encodes.
    """
    return encode_with(pixels, _options(colors, options), progress)


def encode_with(pixels: Any, options: EncodeOptions, progress: Progress | None = None) -> bytes:
    """``encode`` with its options already checked."""
    with reporting(progress):
        layout, plan = _plan_file(pixels, options)
        out = io.BytesIO()
        _write_plan(out, layout, plan, options)
    return out.getvalue()


def save(
    file: str | os.PathLike | BinaryIO,
    pixels: Any,
    colors: int = 256,
    *,
    progress: Progress | None = None,
    **options: Any,
) -> None:
    """Encode ``pixels`` into a path or binary file (numpy.save's argument order).

    Takes ``encode``'s options. The file is written strip by strip as the image is
    mapped, so its bytes are never all in memory; the palette is fitted and every
    option checked before anything is written, and a path is replaced atomically, so
    a failure leaves an existing file as it was. ``progress`` is ``encode``'s.
    """
    checked = _options(colors, options)
    with reporting(progress):
        layout, plan = _plan_file(pixels, checked)
        write_to(file, lambda out: _write_plan(out, layout, plan, checked))
