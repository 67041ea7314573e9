"""What must hold for any input bytes, as functions a fuzzer or a test can call.

Each ``check_*`` function decodes arbitrary bytes and returns normally when the
decoder either produced a consistent image or refused the input with the one
exception family it documents. Anything else (another exception type, or two entry
points disagreeing about the same bytes) escapes as an exception: a finding.

This module imports no fuzzing engine: the tests replay the regression corpus
through exactly these checks, and tools/fuzz/fuzz.py drives them under a fuzzer.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import warnings

import numpy as np
from helpers import iter_chunks, repair_crcs  # noqa: F401  (iter_chunks: for callers)

import vqformat

FUZZ_MAX_PIXELS = 1 << 18
"""Pixel limit while fuzzing: a tiny valid file may legally declare a huge image
(k = 1 needs no index bits), so the limit, not the file size, bounds the work."""


class TrickleStream(io.RawIOBase):
    """A non-seekable stream that hands out at most ``step`` bytes a read, like a pipe."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = memoryview(data)
        self._step = max(1, step)
        self.position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        size = min(len(buffer), self._step, len(self._data) - self.position)
        buffer[:size] = self._data[self.position : self.position + size]
        self.position += size
        return size


def _attempt(function, *args, **kwargs):
    """The function's result, or None if it raised VQIError; any other exception escapes."""
    try:
        return function(*args, **kwargs)
    except vqformat.VQIError as error:
        assert str(error), "VQIError without a message"
        return None


def _as_pixels(palette: np.ndarray, indices: np.ndarray) -> np.ndarray:
    pixels = palette[indices]
    return pixels[..., 0] if palette.shape[1] == 1 else pixels


def check_api(data: bytes) -> None:
    """read_info, verify, decode and decode_indexed agree on ``data``, raising only VQIError.

    ``decode`` reads ``data`` with CRC checks off; ``decode_indexed`` reads the same
    bytes with every CRC repaired and checks on, through a trickling stream. The two
    must accept and reject alike, so the CRC switch changes nothing but the CRC check;
    and ``verify`` (no decompression) must pass whatever decodes.
    """
    info = _attempt(vqformat.read_info, data, check_crc=False)
    pixels = _attempt(vqformat.decode, data, max_pixels=FUZZ_MAX_PIXELS, check_crc=False)
    repaired = repair_crcs(data)
    stream = TrickleStream(repaired, step=7 + len(data) % 89)
    indexed = _attempt(vqformat.decode_indexed, stream, max_pixels=FUZZ_MAX_PIXELS)
    assert (pixels is None) == (indexed is None), "decode and decode_indexed disagree"
    verified = _attempt(vqformat.verify, repaired)
    if pixels is None:
        return
    assert verified is not None, "decoded a file that verify rejects"
    assert info is not None, "decoded a file whose header read_info rejects"
    palette, indices = indexed
    assert palette.shape == (info.colors, info.channels)
    assert indices.shape == (info.height, info.width)
    assert int(indices.max()) < info.colors, "index outside the palette"
    assert np.array_equal(pixels, _as_pixels(palette, indices))


def pillow_format() -> str | None:
    """The Pillow format name registered for .vqi, or None while no plugin is installed."""
    from PIL import Image

    with contextlib.suppress(ImportError):
        importlib.import_module("vqformat.pillow_plugin")
    return Image.registered_extensions().get(".vqi")


def pillow_load(data: bytes) -> np.ndarray | None:
    """The pixels ``Image.open(...).load()`` gives, or None if it raised what Pillow users catch.

    Any other exception escapes. Set ``Image.MAX_IMAGE_PIXELS`` to bound the work.
    """
    from PIL import Image, UnidentifiedImageError

    fmt = pillow_format()
    assert fmt is not None, "no Pillow plugin registered for .vqi"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            warnings.simplefilter("ignore", vqformat.MetadataWarning)  # documented, allowed
            with Image.open(io.BytesIO(data), formats=[fmt]) as image:
                image.load()
                if image.mode == "P":  # the pixels the indices stand for, as decode gives
                    return np.asarray(image.convert(image.palette.mode))
                return np.asarray(image)
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError):
        return None


def check_pillow(data: bytes) -> None:
    """Pillow raises only what its users catch, and loads what the API decodes, alike.

    CRCs are repaired first: Pillow has no switch to skip them.
    """
    repaired = repair_crcs(data)
    loaded = pillow_load(repaired)
    if loaded is None:
        return
    expected = _attempt(vqformat.decode, repaired, max_pixels=None)
    assert expected is not None, "Pillow loaded a file the API rejects"
    assert np.array_equal(loaded, expected), "Pillow and the API decode differently"


TARGETS = {"api": check_api, "pillow": check_pillow}
