"""Per-file work of the command line: one image file to one .vqi file, and back.

Each job is a small picklable description and each worker a top-level function that
returns a ``Result`` instead of raising, so that any executor's ``map`` can run many of
them and one bad file does not stop the others. ``-`` names stdin or stdout.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import signal
import stat
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import IntEnum
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageCms, UnidentifiedImageError

import vqformat

from ..format.atomic import (
    OutputExistsError,
    atomic_output,
    check_target,
    is_special,
    write_atomic,
)
from ..format.metadata import MAX_TEXT_ENTRIES, profile_fits
from ..options import EncodeOptions
from ..pillow_plugin import image_metadata, metadata_save_keywords
from ..pipeline import QualityWarning, encode_with
from ..quantizer.progress import Progress

STDIO = "-"


class ExitStatus(IntEnum):
    """Exit codes of ``vqi``; pngquant's numbers where it has the same case."""

    OK = 0
    USAGE = 1
    INPUT = 2  # missing or unreadable input, or not an image
    CORRUPT = 3  # not a .vqi file, corrupt, or unsupported
    OUTPUT_EXISTS = 15
    UNWRITABLE = 16
    NO_MEMORY = 17
    INTERNAL = 70  # a bug: rerun with --debug and report the traceback
    SKIPPED = 98  # --skip-if-larger: the result was not smaller than the input
    QUALITY_TOO_LOW = 99  # --min-psnr: even the largest palette allowed misses the target
    INTERRUPTED = 130
    STDOUT_CLOSED = 141  # 128 + SIGPIPE, what ``ls | head`` gives


@dataclass(frozen=True, kw_only=True)
class FileJob:
    """One input file and where its output goes; ``force`` allows replacing that output."""

    source: str
    target: str
    force: bool = False


@dataclass(frozen=True, kw_only=True)
class EncodeJob(FileJob):
    options: EncodeOptions
    skip_if_larger: bool = False
    strip: bool = False  # drop the input's colour profile, EXIF, XMP and text
    pixel_limit: bool = True  # Pillow's decompression-bomb limit
    progress: bool = False  # a progress bar on stderr while the encoder reports progress
    frame: int | None = None  # of an animation or multi-page file, which needs one


@dataclass(frozen=True, kw_only=True)
class DecodeJob(FileJob):
    image_format: str
    lossy: bool = False


@dataclass(frozen=True)
class Result:
    """What happened to one file; ``detail`` holds the traceback of a failure."""

    source: str
    target: str
    status: ExitStatus
    message: str
    input_bytes: int = 0
    output_bytes: int = 0
    detail: str = ""


class StdoutClosed(Exception):
    """The reader of standard output went away (``vqi ... | head``): stop quietly."""


class JobFailure(Exception):
    """An expected failure of one file, already classified and worded for the user."""

    def __init__(self, status: ExitStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


def plural(count: int, word: str) -> str:
    """``1 colour``, ``2 colours``."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def one_line_warnings() -> None:
    """Show warnings (Pillow's decompression-bomb warning, say) as one ``vqi:`` line."""

    def show(message, *_ignored: object, **_unused: object) -> None:
        print(f"vqi: warning: {message}", file=sys.stderr)

    warnings.showwarning = show


def describe(error: BaseException) -> str:
    """The cause in a few words: the OS error text without errno and path noise."""
    if isinstance(error, UnidentifiedImageError):
        return "not an image format Pillow can read"
    if isinstance(error, Image.DecompressionBombError):
        return f"{error} Pass --no-pixel-limit to encode it if you trust the file."
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


@contextmanager
def failing_as(status: ExitStatus, action: str) -> Iterator[None]:
    """Turn the expected errors of one step into a JobFailure with ``status``."""
    try:
        yield
    except OutputExistsError as error:
        raise JobFailure(ExitStatus.OUTPUT_EXISTS, str(error)) from error
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise JobFailure(status, f"cannot {action}: {describe(error)}") from error


def classify(error: Exception) -> tuple[ExitStatus, str]:
    """The exit status and message of a failure that escaped a job."""
    if isinstance(error, JobFailure):
        return error.status, str(error)
    if isinstance(error, MemoryError):
        return ExitStatus.NO_MEMORY, "out of memory"
    return ExitStatus.INTERNAL, f"internal error: {error!r}"


_interrupted = False
_finishing = False  # the running job's output is complete: committing it, then reporting it


def stop_on_interrupt() -> None:
    """In a worker process: after Ctrl-C, stop the running job and start no other (the
    jobs already queued to this worker are answered as not started). A job whose output
    is complete commits it and reports it: stopped then, its file would exist unnamed."""

    def interrupt(signum: int, frame: object) -> None:
        global _interrupted
        _interrupted = True
        if not _finishing:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)


def _finish_uninterrupted() -> None:
    global _finishing
    _finishing = True


def run_safely(source: str, target: str, work: Callable[[], Result]) -> Result:
    """Run ``work``; any failure becomes a Result (KeyboardInterrupt still propagates)."""
    global _finishing
    if _interrupted:
        return Result(source, target, ExitStatus.INTERRUPTED, "not started: interrupted")
    _finishing = False
    try:
        return work()
    except StdoutClosed:
        raise
    except Exception as error:
        status, message = classify(error)
        detail = "".join(traceback.format_exception(error))
        return Result(source, target, status, message, detail=detail)


# --- reading and writing files ---------------------------------------------------------


def display_name(path: str, stream: str) -> str:
    """How messages name a path: ``-`` is the standard stream."""
    return stream if path == STDIO else path


def read_input(source: str) -> tuple[BinaryIO, int]:
    """An open binary stream of the source and its size in bytes (stdin is read whole)."""
    if source == STDIO:
        if sys.stdin.isatty():
            raise ValueError("standard input is a terminal, not image data")
        data = sys.stdin.buffer.read()
        if not data:
            raise ValueError("standard input is empty")
        return io.BytesIO(data), len(data)
    stream = open(source, "rb")  # noqa: SIM115 - closed by the caller
    return stream, os.fstat(stream.fileno()).st_size


def write_output(target: str, write: Callable[[BinaryIO], None], force: bool) -> int:
    """Write through ``write`` atomically to ``target`` (or stdout); returns the bytes written."""
    if target != STDIO and not is_special(target):
        with atomic_output(target, force=force) as stream:
            write(stream)
            size = stream.seek(0, io.SEEK_END)  # a writer may have seeked back (ICO does)
            _finish_uninterrupted()
        return size
    buffer = io.BytesIO()  # pipes and devices cannot seek back, as some writers do
    write(buffer)
    if target == STDIO:
        return write_stdout(buffer.getvalue())
    write_atomic(target, buffer.getvalue(), force=force)
    return len(buffer.getvalue())


def write_stdout(data: bytes) -> int:
    """Write all of ``data`` to standard output, or raise: a short write is an error
    (OSError), a closed pipe is StdoutClosed. A regular file is synced, so that a full
    disk shows here rather than later."""
    sys.stdout.flush()
    descriptor, view = sys.stdout.fileno(), memoryview(data)
    try:
        while view:
            view = view[os.write(descriptor, view) :]
        if stat.S_ISREG(os.fstat(descriptor).st_mode):
            os.fsync(descriptor)
    except BrokenPipeError:
        raise StdoutClosed from None
    return len(data)


def writing(target: str) -> contextlib.AbstractContextManager[None]:
    """The failure context of any step that writes ``target``."""
    return failing_as(ExitStatus.UNWRITABLE, f"write {display_name(target, 'standard output')}")


def check_output(target: str, force: bool) -> None:
    """Refuse early, before the slow part, if the target cannot be written."""
    with writing(target):
        if target != STDIO:
            check_target(target, force=force)
        elif sys.stdout.isatty():
            raise ValueError("standard output is a terminal: redirect it or use -o")


_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}
_EIGHT_BIT_MODES = {
    "1": "L",
    "L": "L",
    "LA": "LA",
    "La": "LA",
    "RGB": "RGB",
    "RGBA": "RGBA",
    "RGBa": "RGBA",
}


def image_pixels(image: Image.Image) -> np.ndarray:
    """The uint8 (H, W) or (H, W, C) pixels of an image as displayed.

    The EXIF orientation is not applied: the EXIF is kept and viewers apply it, as
    for PNG and WebP. 16-bit grey samples (I;16) keep their top 8 bits; 32-bit integer
    (I) and floating-point (F) images are refused, as no rule maps their range to 8
    bits; palette and other colour spaces become RGB, and a colour key (PNG tRNS) or
    palette transparency gives LA or RGBA.
    """
    if image.mode in ("I", "F"):
        raise ValueError(
            f"{'32-bit integer' if image.mode == 'I' else 'floating-point'} images are not "
            "supported: convert them to 8 or 16 bits first"
        )
    if image.mode in _SIXTEEN_BIT_MODES:
        samples = np.clip(np.asarray(image, dtype=np.int64), 0, 0xFFFF)
        return (samples >> 8).astype(np.uint8)
    mode = _EIGHT_BIT_MODES.get(image.mode)
    if "transparency" in image.info and mode in ("L", "RGB"):
        mode += "A"
    if mode is None:
        mode = "RGBA" if image.has_transparency_data else "RGB"
    return np.asarray(image if image.mode == mode else image.convert(mode))


def choose_frame(image: Image.Image, frame: int | None) -> None:
    """Seek to ``frame`` of an animation or multi-page file. Without one such a file is
    refused: a .vqi file holds one image, and keeping the first alone would lose the
    rest silently."""
    frames = getattr(image, "n_frames", 1)
    if frame is None and frames > 1:
        raise ValueError(
            f"it holds {frames} frames and a .vqi file one image: "
            f"choose one with --frame 0..{frames - 1}"
        )
    if frame is not None:
        if not 0 <= frame < frames:
            raise ValueError(f"--frame {frame} does not exist: it holds {plural(frames, 'frame')}")
        image.seek(frame)


def read_pixels(source: str, frame: int | None = None) -> np.ndarray:
    """The pixels of one image file (of its ``frame``, see ``choose_frame``), as
    ``image_pixels`` gives them; raises JobFailure."""
    with failing_as(ExitStatus.INPUT, "read"):
        stream, _ = read_input(source)
        with stream, Image.open(stream) as image:
            choose_frame(image, frame)
            return image_pixels(image)


def output_format(target: str, requested: str | None) -> str:
    """The Pillow format to write: the one requested, else the target's extension, else PNG."""
    Image.init()
    extension = f".{requested.lower().lstrip('.')}" if requested else os.path.splitext(target)[1]
    if (target == STDIO and not requested) or not extension:
        return "PNG"
    name = Image.registered_extensions().get(extension.lower())
    if name not in Image.SAVE:
        raise ValueError(f"Pillow cannot write {extension} images: {target}")
    return name


# --- the workers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Converted:
    """A converted file ready to write, or the reason it is not written."""

    write: Callable[[BinaryIO], object]
    summary: str
    skipped: str = ""


def encode_file(job: EncodeJob) -> Result:
    """Encode one image file into a .vqi file."""
    return run_safely(job.source, job.target, lambda: _convert(job, _encode))


def decode_file(job: DecodeJob) -> Result:
    """Decode one .vqi file into an image file of the job's format."""
    return run_safely(job.source, job.target, lambda: _convert(job, _decode))


def _convert(job: FileJob, convert: Callable[..., Converted]) -> Result:
    """Open the input, refuse a bad target before the slow part, convert, write atomically."""
    with failing_as(ExitStatus.INPUT, "read"):
        stream, input_bytes = read_input(job.source)
    with stream:
        check_output(job.target, job.force)
        converted = convert(job, stream, input_bytes)
    if converted.skipped:
        return Result(job.source, job.target, ExitStatus.SKIPPED, converted.skipped, input_bytes)
    with writing(job.target):
        written = write_output(job.target, converted.write, job.force)
    message = f"{converted.summary}, {written:,} bytes"
    return Result(job.source, job.target, ExitStatus.OK, message, input_bytes, written)


def _encode(job: EncodeJob, stream: BinaryIO, input_bytes: int) -> Converted:
    if not job.pixel_limit:
        Image.MAX_IMAGE_PIXELS = None
    with failing_as(ExitStatus.INPUT, "read"), Image.open(stream) as image:
        choose_frame(image, job.frame)
        pixels = image_pixels(image)
        kept = {} if job.strip else _fitting_metadata(image, pixels)
    with failing_as(ExitStatus.INPUT, "encode"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", QualityWarning)
        with progress_bar(job.progress) as progress:
            data = encode_with(pixels, dataclasses.replace(job.options, **kept), progress)
    _check_quality(job.options, [w.message for w in caught if w.category is QualityWarning])
    info = vqformat.read_info(data)
    summary = (
        f"{info.width}x{info.height} {info.mode}, {plural(info.colors, 'colour')} "
        f"({plural(info.bits_per_index, 'bit')}/index), "
        f"{8 * len(data) / (info.width * info.height):.3g} bits/pixel"
    )
    skipped = ""
    if job.skip_if_larger and len(data) >= input_bytes:
        skipped = f"skipped: {len(data):,} bytes is not smaller than the input's {input_bytes:,}"
    return Converted(lambda out: out.write(data), summary, skipped)


@contextmanager
def progress_bar(shown: bool) -> Iterator[Progress | None]:
    """A progress callback drawing a bar on stderr, or None when not ``shown``. The
    bar appears only when the encoder first reports (its slow parts) and is removed
    at the end, so quick encodes print nothing more."""
    if not shown:
        yield None
        return
    from tqdm import tqdm

    bars: list[tqdm] = []

    def progress(stage: str, fraction: float) -> None:
        if not bars:
            bar = tqdm(desc=stage, total=100, file=sys.stderr, leave=False, bar_format=_BAR_FORMAT)
            bars.append(bar)
        bar = bars[0]
        bar.set_description_str(stage, refresh=False)
        bar.update(round(100 * fraction) - bar.n)

    try:
        yield progress
    finally:
        for bar in bars:
            bar.close()


_BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {elapsed}"


def _fitting_metadata(image: Image.Image, pixels: np.ndarray) -> dict:
    """The image's metadata that a .vqi file can hold: less a colour profile that no
    longer describes the pixels (a CMYK profile once they became RGB), and less what
    breaks the limits of spec §3.3 (such as a PNG text key over 79 UTF-8 bytes)."""
    kept = image_metadata(image)
    text = kept.pop("text", {})
    kept = {name: value for name, value in kept.items() if _storable(**{name: value})}
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    if kept.get("icc_profile") and not profile_fits(kept["icc_profile"], channels):
        del kept["icc_profile"]
    entries = [(key, value) for key, value in text.items() if _storable(text={key: value})]
    if entries:
        kept["text"] = dict(entries[:MAX_TEXT_ENTRIES])
    return kept


def _storable(**metadata: object) -> bool:
    try:
        vqformat.Metadata(**metadata)
    except vqformat.VQIError:
        return False
    return True


def _check_quality(options: EncodeOptions, missed: list[QualityWarning]) -> None:
    """Refuse, as pngquant --quality does, a result whose PSNR (judged before any
    dithering, as the encoder judges it) misses the target."""
    if not missed:
        return
    warning = missed[0]
    hint = (
        "allow more colours with -k"
        if warning.colors >= options.colors
        else f"only {warning.colors} of -k {options.colors} colours could be used"
    )
    raise JobFailure(
        ExitStatus.QUALITY_TOO_LOW,
        f"{warning.reached:.2f} dB with {plural(warning.colors, 'colour')} is below "
        f"--min-psnr {warning.target:g}; nothing written ({hint})",
    )


_EXACT_SAVE_OPTIONS = {"WEBP": {"lossless": True, "exact": True, "quality": 100}}
_ALWAYS_EXACT = {"PNG", "TIFF"}  # hold L, LA, RGB and RGBA losslessly: no need to read back


def _decode(job: DecodeJob, stream: BinaryIO, input_bytes: int) -> Converted:
    with failing_as(ExitStatus.CORRUPT, "decode"):
        data = stream.read()  # read twice: metadata, then pixels
        keywords = metadata_save_keywords(vqformat.read_metadata(data), job.image_format)
        image = Image.fromarray(vqformat.decode(data))
    summary = f"{image.width}x{image.height} {image.mode}, {job.image_format}"
    with writing(job.target):
        encoded = io.BytesIO()
        options = {**keywords, **_EXACT_SAVE_OPTIONS.get(job.image_format, {})}
        image.save(encoded, format=job.image_format, **options)
    if not job.lossy and job.image_format not in _ALWAYS_EXACT:
        _check_exact(image, encoded, job.image_format)
    return Converted(lambda out: out.write(encoded.getvalue()), summary)


@contextmanager
def _own_output() -> Iterator[None]:
    """Read back a file this process just wrote: Pillow's bomb limit does not apply."""
    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def _check_exact(image: Image.Image, encoded: io.BytesIO, image_format: str) -> None:
    """Refuse a format that would not give back every pixel (lossy, no alpha, resized),
    by reading the encoded file back."""
    try:
        encoded.seek(0)
        with _own_output(), Image.open(encoded) as written:
            exact = written.size == image.size and np.array_equal(
                np.asarray(written.convert(image.mode)), np.asarray(image)
            )
    except (OSError, ValueError):
        exact = False
    if not exact:
        raise JobFailure(
            ExitStatus.UNWRITABLE,
            f"{image_format} cannot hold this {image.mode} image exactly; nothing written "
            "(use png, webp or tiff, or pass --lossy to accept the loss)",
        )


def file_info(source: str) -> dict:
    """Header fields and size figures of one .vqi file; raises JobFailure."""
    with failing_as(ExitStatus.INPUT, "read"):
        stream, size = read_input(source)
    with stream, failing_as(ExitStatus.CORRUPT, "read the header"):
        info = vqformat.read_info(stream)
        stream.seek(0)
        metadata = vqformat.read_metadata(stream)
    pixels = info.width * info.height
    raw_bytes = pixels * info.channels
    return {
        "file": source,
        "width": info.width,
        "height": info.height,
        "mode": info.mode,
        "channels": info.channels,
        "colors": info.colors,
        "bits_per_index": info.bits_per_index,
        "compression": info.compression,
        "strip_rows": info.strip_rows,
        "version": info.version,
        "bytes": size,
        "bits_per_pixel": 8 * size / pixels,
        "raw_bytes": raw_bytes,
        "ratio": raw_bytes / size,
        "metadata": metadata_summary(metadata),
    }


def metadata_summary(metadata: vqformat.Metadata) -> dict:
    """What ``vqi info`` says of the metadata: sizes, the profile's name, the text keys."""
    summary: dict = {}
    if metadata.icc_profile:
        description = profile_description(metadata.icc_profile)
        summary["icc_profile"] = {"bytes": len(metadata.icc_profile), "description": description}
    for name in ("exif", "xmp"):
        if getattr(metadata, name):
            summary[name] = {"bytes": len(getattr(metadata, name))}
    if metadata.text:
        summary["text"] = list(metadata.text)
    return summary


def profile_description(profile: bytes) -> str | None:
    """The ICC profile's 'desc' tag, or None when Little CMS cannot read the profile."""
    try:
        return ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(profile))).strip()
    except (ImageCms.PyCMSError, OSError, ValueError):
        return None
