"""One palette for a whole collection of images, fitted out-of-core, and its file.

Consistent colours across a dataset (the same index means the same colour in every
file) come from fitting one palette on samples of every image, streamed through
mini-batch k-means so that only one image is read at a time, and then encoding each
image with ``encode(..., palette=...)``. The palette file is itself a tiny .vqi
image (spec/palette-file.md), so every VQI reader can open and show it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

import numpy as np

from .errors import VQIError, check_integer
from .format.container import MAX_COLORS
from .format.reading import Source, decode_indexed
from .format.writing import write_indexed, write_to
from .quantizer.streaming import ImageRows, fit_stream, sample_pixels

SAMPLES_PER_IMAGE = 1 << 16
"""Pixels sampled from each image; an image holds about this many before it is sampled."""


def fit_palette(
    images: Iterable[Any],
    colors: int = 256,
    *,
    seed: int = 0,
    samples_per_image: int = SAMPLES_PER_IMAGE,
) -> np.ndarray:
    """One (k, C) uint8 palette of at most ``colors`` entries for every image of a collection.

    ``images`` is any iterable of arrays or array-likes (memmaps, or a generator that
    loads one file at a time); all must have the same number of channels. Memory is
    bounded by one image's band and one mini-batch, whatever the collection's size.
    Deterministic for a given sequence of images and seed.
    """
    colors = check_integer("colors", colors, 1, MAX_COLORS)
    samples_per_image = check_integer("samples_per_image", samples_per_image, 1)
    return fit_stream(_samples(images, samples_per_image, seed), colors, seed)


def _samples(images: Iterable[Any], count: int, seed: int) -> Iterator[np.ndarray]:
    """A shuffled sample of each image in turn, so mini-batches mix the whole image."""
    channels = None
    for number, pixels in enumerate(images):
        image = ImageRows.of(pixels)
        if channels is None:
            channels = image.channels
        elif image.channels != channels:
            raise VQIError(
                f"image {number + 1} has {image.channels} channels but image 1 has "
                f"{channels}: convert the collection to one mode first"
            )
        sample, _ = sample_pixels(image, count, (seed, number))
        yield np.random.default_rng((seed, number)).permutation(sample)


def write_palette(file: str | os.PathLike | BinaryIO, palette: np.ndarray) -> None:
    """Write a palette file: a .vqi image one row high whose pixel i is entry i."""
    palette = np.asarray(palette)
    indices = np.arange(len(palette))[None, :]
    write_to(file, lambda out: write_indexed(out, palette, indices, compression="stored"))


def read_palette(source: Source) -> np.ndarray:
    """The (k, C) uint8 palette of a palette file, checked to be one (see spec/palette-file.md)."""
    palette, indices = decode_indexed(source, max_pixels=MAX_COLORS)
    if indices.shape != (1, len(palette)) or not np.array_equal(
        indices[0], np.arange(len(palette))
    ):
        raise VQIError(
            f"not a palette file: a {indices.shape[1]}x{indices.shape[0]} image that is not "
            f"its {len(palette)} palette entries in order"
        )
    return palette.copy()
