"""The encoder's options, declared once: name, default, meaning and check of each.

``encode``, ``quantize``, ``save``, Pillow's ``Image.save`` keywords and the ``vqi
encode`` flags are all derived from ``EncodeOptions``: a new option is one field here
(its ``help`` and ``flags`` metadata make the command-line flag), read where it is used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from .errors import VQIError, check_integer
from .format.container import MAX_COLORS
from .format.metadata import Metadata
from .format.methods import COMPRESSION_METHODS, DEFAULT_COMPRESSION
from .format.writing import as_palette
from .quantizer.dither import check_strength
from .quantizer.palette import DEFAULT_PALETTE_METHOD, PALETTE_METHODS

MAX_SEED = 2**32 - 1


def _option(default: Any, help: str, *flags: str, **cli: Any) -> Any:
    """A field whose metadata makes its command-line flag (none when ``flags`` is empty)."""
    return field(default=default, metadata={"help": help, "flags": flags, "cli": cli})


@dataclass(frozen=True, kw_only=True)
class EncodeOptions:
    """How an image is quantized and stored; every value is checked on construction."""

    colors: int = _option(
        256, f"palette size, 1..{MAX_COLORS} (default 256)", "-k", "--colors", metavar="K", type=int
    )
    method: str = _option(
        DEFAULT_PALETTE_METHOD,
        f"how the palette is fitted (default {DEFAULT_PALETTE_METHOD})",
        "--method",
        choices=tuple(PALETTE_METHODS),
    )
    compression: str = _option(
        DEFAULT_COMPRESSION,
        f"how the index stream is stored (default {DEFAULT_COMPRESSION})",
        "--compression",
        choices=tuple(COMPRESSION_METHODS),
    )
    min_psnr: float | None = _option(
        None,
        "use the fewest colours (at most K) whose PSNR reaches DB, like pngquant --quality",
        "--min-psnr",
        metavar="DB",
        type=float,
    )
    dither: float = _option(
        0.0,
        "selective Floyd-Steinberg error diffusion at full strength (see --dither-strength): "
        "no banding in smooth gradients, lower PSNR, larger files",
        "--dither",
        action="store_const",
        const=1.0,
    )
    seed: int = _option(
        0, f"seed of the palette fit, 0..{MAX_SEED} (default 0)", "--seed", metavar="N", type=int
    )
    strip_rows: int | None = _option(
        None,
        "rows per strip (default: about 1/64 of the image)",
        "--strip-rows",
        metavar="N",
        type=int,
    )
    palette: np.ndarray | None = field(default=None, compare=False, metadata={"help": ""})
    icc_profile: bytes | None = field(default=None, metadata={"help": "ICC colour profile"})
    exif: bytes | None = field(default=None, metadata={"help": "EXIF, Image.Exif or bytes"})
    xmp: bytes | None = field(default=None, metadata={"help": "XMP packet, bytes or str"})
    text: Mapping[str, str] | None = field(default=None, metadata={"help": "text entries"})

    def __post_init__(self) -> None:
        for name, value in _checked(self).items():
            object.__setattr__(self, name, value)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> EncodeOptions:
        """The options named in ``values`` (Pillow's ``encoderinfo``, argparse's
        namespace as a dict); other keys belong to other formats or commands."""
        return cls(**{name: values[name] for name in option_names() if name in values})

    def metadata(self) -> Metadata:
        """The metadata chunks to store (spec §3.3)."""
        return Metadata(self.icc_profile, self.exif, self.xmp, self.text or {})

    def fit_options(self) -> dict[str, Any]:
        """The keywords of the quantizer's palette fit."""
        return {"method": self.method, "seed": self.seed, "min_psnr": self.min_psnr}


def option_names() -> tuple[str, ...]:
    return tuple(option.name for option in fields(EncodeOptions))


def command_line_options() -> dict[str, tuple[tuple[str, ...], dict[str, Any]]]:
    """name -> (flags, ``add_argument`` keywords) of every option that has a flag."""
    return {
        option.name: (
            option.metadata["flags"],
            {"help": option.metadata["help"], **option.metadata["cli"]},
        )
        for option in fields(EncodeOptions)
        if option.metadata.get("flags")
    }


def _checked(options: EncodeOptions) -> dict[str, Any]:
    """Each option's value, normalised, or a VQIError naming what is wrong."""
    metadata = options.metadata()
    return {
        "icc_profile": metadata.icc_profile,
        "exif": metadata.exif,
        "xmp": metadata.xmp,
        "text": dict(metadata.text) or None,
        "colors": check_integer("colors", options.colors, 1, MAX_COLORS),
        "method": _known("palette method", options.method, PALETTE_METHODS),
        "compression": _known("compression", options.compression, COMPRESSION_METHODS),
        "min_psnr": _decibels(options.min_psnr),
        "dither": check_strength(options.dither),
        "seed": check_integer("seed", options.seed, 0, MAX_SEED),
        "strip_rows": None
        if options.strip_rows is None
        else check_integer("strip height", options.strip_rows, 1),
        "palette": None if options.palette is None else as_palette(options.palette),
    }


def _known(what: str, value: object, known: Mapping[str, Any]) -> str:
    if not isinstance(value, str) or value not in known:
        raise VQIError(f"unknown {what} {value!r}; choose one of {', '.join(known)}")
    return value


def _decibels(min_psnr: object) -> float | None:
    if min_psnr is None:
        return None
    if isinstance(min_psnr, bool) or not isinstance(min_psnr, (int, float, np.number)):
        raise VQIError(f"min_psnr must be a number of dB, got {min_psnr!r}")
    if not 0 < min_psnr < math.inf:
        raise VQIError(f"min_psnr must be a positive finite number of dB, got {min_psnr}")
    return float(min_psnr)
