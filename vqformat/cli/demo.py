"""``vqi demo``: encode built-in sample images, print what it costs, draw a contact sheet.

The samples ship with scikit-learn (``china.jpg``, and ``flower.jpg`` turned grey), so
the demo needs no download. The colour photo is encoded at several palette sizes, the
grey one at 8 levels with every palette method, as in scikit-learn's face-compression
example. Each result is decoded back from its .vqi bytes before it is measured or drawn.
"""

from __future__ import annotations

import io
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

import vqformat

from ..format.atomic import OutputExistsError, check_target, write_atomic
from ..options import EncodeOptions
from ..quantizer.palette import PALETTE_METHODS, image_psnr
from .jobs import ExitStatus, describe

COLOUR_SIZES = (4, 16, 64)
GREY_SIZE = 8
SHEET_NAME = "contact-sheet.png"

THUMB_SCALE = 2  # panels show each image at half size (box-averaged)
MARGIN = 16
CAPTION_LINES = 2
LINE_HEIGHT = 18
BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)
MUTED = (110, 110, 110)
METHOD_COLOURS = ((214, 39, 40), (31, 119, 180), (44, 160, 44), (148, 103, 189), (255, 127, 14))


@dataclass(frozen=True)
class Sample:
    name: str
    pixels: np.ndarray


@dataclass(frozen=True)
class Trial:
    """One encoding of a sample and what it cost."""

    sample: Sample
    colors: int
    method: str
    data: bytes
    decoded: np.ndarray
    palette: np.ndarray
    png8_bytes: int

    @property
    def info(self) -> vqformat.VQIInfo:
        return vqformat.read_info(self.data)

    @property
    def bits_per_pixel(self) -> float:
        return 8 * len(self.data) / self.decoded.shape[0] / self.decoded.shape[1]

    @property
    def ratio(self) -> float:
        return self.sample.pixels.nbytes / len(self.data)

    @property
    def psnr(self) -> float:
        return image_psnr(self.sample.pixels, self.decoded)


def file_name(sample: Sample, colors: int, method: str) -> str:
    return f"{sample.name}-k{colors}-{method}.vqi"


def load_samples() -> tuple[Sample, Sample]:
    """scikit-learn's colour photo and its flower photo in grey (installed with it)."""
    from sklearn.datasets import load_sample_image

    grey = Image.fromarray(load_sample_image("flower.jpg")).convert("L")
    return Sample("china", load_sample_image("china.jpg")), Sample("flower-grey", np.asarray(grey))


def png8_size(colours: np.ndarray, indices: np.ndarray) -> int:
    """Bytes of the same palette and indices as an indexed PNG (Pillow, optimised): a peer."""
    image = Image.fromarray(indices.astype(np.uint8), "P")
    rgb = colours if colours.shape[1] == 3 else np.repeat(colours[:, :1], 3, axis=1)
    image.putpalette(rgb.ravel().tolist())
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=True)
    return len(buffer.getvalue())


def run_trial(sample: Sample, colors: int, method: str) -> Trial:
    data = vqformat.encode(sample.pixels, colors, method=method)
    colours, indices = vqformat.decode_indexed(data)
    decoded = vqformat.decode(data)
    return Trial(sample, colors, method, data, decoded, colours, png8_size(colours, indices))


def plan_trials(colour: Sample, grey: Sample) -> list[tuple[Sample, int, str]]:
    trials = [(colour, colors, EncodeOptions().method) for colors in COLOUR_SIZES]
    return trials + [(grey, GREY_SIZE, method) for method in PALETTE_METHODS]


# --- the table ---------------------------------------------------------------------------

HEADER = (
    f"{'file':<28} {'k':>4} {'colours':>7} {'bits/index':>10} {'bytes':>9} "
    f"{'bits/pixel':>10} {'ratio':>7} {'PSNR dB':>7} {'PNG-8 bytes':>11}"
)


def table_row(trial: Trial) -> str:
    info = trial.info
    name = file_name(trial.sample, trial.colors, trial.method)
    return (
        f"{name:<28} {trial.colors:>4} {info.colors:>7} {info.bits_per_index:>10} "
        f"{len(trial.data):>9,} {trial.bits_per_pixel:>10.3f} {trial.ratio:>6.1f}x "
        f"{trial.psnr:>7.2f} {trial.png8_bytes:>11,}"
    )


# --- the contact sheet ---------------------------------------------------------------------


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def thumbnail(pixels: np.ndarray) -> Image.Image:
    image = Image.fromarray(pixels).convert("RGB")
    return image.reduce(THUMB_SCALE)


def histogram_panel(grey: Sample, trials: list[Trial], size: tuple[int, int]) -> Image.Image:
    """Counts of each grey level of the original, with each method's palette levels marked."""
    width, height = size
    panel = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(panel)
    font = _font(11)
    left, right, top, bottom = 12, width - 16, 8 + LINE_HEIGHT * len(trials), height - 22
    counts = np.bincount(grey.pixels.ravel(), minlength=256)
    scale = (bottom - top) / counts.max()
    x_of = lambda level: left + level * (right - left) / 255  # noqa: E731
    for level, count in enumerate(counts):
        draw.line([(x_of(level), bottom), (x_of(level), bottom - count * scale)], fill=MUTED)
    for row, trial in enumerate(trials):
        colour = METHOD_COLOURS[row % len(METHOD_COLOURS)]
        for level in trial.palette[:, 0].tolist():
            draw.line([(x_of(level), top - 4), (x_of(level), bottom)], fill=colour, width=1)
        draw.text((left, 4 + LINE_HEIGHT * row), f"{trial.method} levels", fill=colour, font=font)
    draw.line([(left, bottom), (right, bottom)], fill=INK)
    for level in (0, 64, 128, 192, 255):
        draw.text((x_of(level), bottom + 3), str(level), fill=INK, font=font, anchor="ma")
    return panel


def caption(trial: Trial) -> tuple[str, str]:
    info = trial.info
    return (
        f"k={trial.colors} {trial.method}, {info.bits_per_index} bits/index",
        f"{trial.bits_per_pixel:.2f} bits/pixel, PSNR {trial.psnr:.1f} dB",
    )


def contact_sheet(colour: Sample, grey: Sample, trials: list[Trial]) -> Image.Image:
    """Rows of labelled panels: each sample's original, its decoded versions, and a histogram."""
    rows: list[list[tuple[Image.Image, tuple[str, str]]]] = []
    for sample in (colour, grey):
        own = [trial for trial in trials if trial.sample is sample]
        row = [(thumbnail(sample.pixels), (f"{sample.name} original", "8 bits per sample"))]
        row += [(thumbnail(trial.decoded), caption(trial)) for trial in own]
        rows.append(row)
    panel_size = rows[0][0][0].size
    grey_trials = [trial for trial in trials if trial.sample is grey]
    rows[1].append(
        (
            histogram_panel(grey, grey_trials, panel_size),
            ("histogram of grey levels", f"with the k={GREY_SIZE} palettes"),
        )
    )
    columns = max(len(row) for row in rows)
    cell_width = panel_size[0] + MARGIN
    cell_height = panel_size[1] + CAPTION_LINES * LINE_HEIGHT + MARGIN
    title_height = 2 * LINE_HEIGHT + MARGIN
    sheet = Image.new(
        "RGB",
        (MARGIN + columns * cell_width, title_height + len(rows) * cell_height),
        BACKGROUND,
    )
    draw = ImageDraw.Draw(sheet)
    draw.text(
        (MARGIN, MARGIN),
        "vqi demo: scikit-learn sample images decoded from .vqi files (shown at half size)",
        fill=INK,
        font=_font(16),
    )
    font = _font(13)
    for row_number, row in enumerate(rows):
        y = title_height + row_number * cell_height
        for column, (image, lines) in enumerate(row):
            x = MARGIN + column * cell_width
            sheet.paste(image, (x, y))
            for line_number, line in enumerate(lines):
                text_y = y + panel_size[1] + 3 + line_number * LINE_HEIGHT
                draw.text((x, text_y), line, fill=INK if line_number == 0 else MUTED, font=font)
    return sheet


# --- the command -------------------------------------------------------------------------


def run(folder: str, *, force: bool = False, quiet: bool = False) -> int:
    """Run the demo into ``folder``; returns an exit status."""
    say = (lambda line: None) if quiet else print
    out = Path(folder)
    colour, grey = load_samples()
    plans = plan_trials(colour, grey)
    targets = [out / file_name(*plan) for plan in plans]
    try:
        for target in [*targets, out / SHEET_NAME]:
            check_target(target, force=force)
    except OutputExistsError as error:
        print(f"vqi: {error}", file=sys.stderr)
        return ExitStatus.OUTPUT_EXISTS
    except OSError as error:
        print(f"vqi: cannot write {out}: {describe(error)}", file=sys.stderr)
        return ExitStatus.UNWRITABLE
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        print(f"vqi: cannot write {out}: {describe(error)}", file=sys.stderr)
        return ExitStatus.UNWRITABLE
    started = time.perf_counter()
    say(f"sample images from scikit-learn, written to {out}/")
    say(HEADER)
    trials = []
    try:
        for (sample, colors, method), target in zip(plans, targets, strict=True):
            trial = run_trial(sample, colors, method)
            write_atomic(target, trial.data, force=force)
            trials.append(trial)
            say(table_row(trial))
        sheet = io.BytesIO()
        contact_sheet(colour, grey, trials).save(sheet, "PNG")
        write_atomic(out / SHEET_NAME, sheet.getvalue(), force=force)
    except OSError as error:
        print(f"vqi: cannot write in {out}: {describe(error)}", file=sys.stderr)
        return ExitStatus.UNWRITABLE
    say(f"raw sizes: china {colour.pixels.nbytes:,} bytes, flower-grey {grey.pixels.nbytes:,}")
    say(f"contact sheet: {out / SHEET_NAME} (done in {time.perf_counter() - started:.1f} s)")
    return ExitStatus.OK
