"""The ``vqi`` command: argument parsing, dispatch, messages and exit codes.

Each subcommand is one ``add_*`` function that registers its parser and the function
that runs it; the work itself lives in ``jobs`` (per file), ``batch`` (many files) and
``demo``. Heavy modules (scikit-learn, tqdm) are imported only when a command needs them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import NoReturn

import numpy as np

import vqformat
from vqformat import dataset

from ..errors import VQIError
from ..options import EncodeOptions, command_line_options
from .batch import (
    Interrupted,
    Mapper,
    Reporter,
    UsageError,
    local_mapper,
    output_folder,
    overall_status,
    plan_targets,
    run_jobs,
)
from .jobs import (
    STDIO,
    DecodeJob,
    EncodeJob,
    ExitStatus,
    JobFailure,
    StdoutClosed,
    check_output,
    decode_file,
    describe,
    display_name,
    encode_file,
    failing_as,
    file_info,
    one_line_warnings,
    output_format,
    plural,
    read_pixels,
    write_output,
    writing,
)

EXIT_STATUS_HELP = {
    ExitStatus.OK: "success",
    ExitStatus.USAGE: "invalid command line",
    ExitStatus.INPUT: "an input is missing, unreadable or not an image",
    ExitStatus.CORRUPT: "a .vqi input is corrupt, truncated or unsupported",
    ExitStatus.OUTPUT_EXISTS: "an output file exists (use --force to overwrite)",
    ExitStatus.UNWRITABLE: "an output cannot be written",
    ExitStatus.NO_MEMORY: "out of memory",
    ExitStatus.INTERNAL: "internal error (rerun with --debug and report the traceback)",
    ExitStatus.SKIPPED: "--skip-if-larger: a result was not smaller than its input",
    ExitStatus.QUALITY_TOO_LOW: "--min-psnr: the target was not reached with -k colours",
    ExitStatus.INTERRUPTED: "interrupted (Ctrl-C)",
    ExitStatus.STDOUT_CLOSED: "standard output was closed early (as by head); quiet",
}

EXAMPLES = """\
examples:
  vqi demo -o demo-output            encode sample images, write a contact sheet
  vqi encode photo.jpg               write photo.vqi (256 colours)
  vqi encode -k 16 photo.png -o small.vqi
  vqi encode -j 4 *.png -o out/      many files into a folder, 4 processes
  vqi fit-palette *.png -o p.vqi     one palette for a collection; then
  vqi encode --palette p.vqi *.png -o out/
  vqi decode photo.vqi               write photo.png
  vqi decode photo.vqi -o photo.webp any format Pillow writes, by extension
  cat photo.png | vqi encode - > photo.vqi
  vqi info --json photo.vqi
"""


def exit_status_table() -> str:
    rows = "\n".join(f"  {int(code):<4}{text}" for code, text in EXIT_STATUS_HELP.items())
    return (
        f"exit status:\n{rows}\n"
        "With several files the status is that of the first file that failed,\n"
        "else 98 if a file was skipped."
    )


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors exit with ExitStatus.USAGE."""

    def error(self, message: str) -> NoReturn:
        self.exit(ExitStatus.USAGE, f"vqi: {message}\nsee '{self.prog} --help'\n")


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def _frame_number(text: str) -> int:
    number = _integer(text)
    if number < 0:
        raise argparse.ArgumentTypeError(f"frames count from 0, got {number}")
    return number


def _checked_option(name: str, convert: Callable[[str], object]) -> Callable[[str], object]:
    """An argparse type that converts a flag's text and checks it as ``EncodeOptions`` does."""

    def parse(text: str) -> object:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a {convert.__name__}: {text!r}") from None
        try:
            EncodeOptions(**{name: value})
        except VQIError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
        return value

    return parse


def add_encode_option(parser: argparse.ArgumentParser, name: str) -> None:
    """The flag of one ``EncodeOptions`` field, with its default, help and check."""
    flags, keywords = command_line_options()[name]
    keywords = dict(keywords)
    if "type" in keywords:
        keywords["type"] = _checked_option(name, keywords["type"])
    parser.add_argument(
        *flags, dest=name, default=EncodeOptions.__dataclass_fields__[name].default, **keywords
    )


def worker_count(text: str) -> int:
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 (one per CPU) or more")
    return value or os.cpu_count() or 1


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="print tracebacks of errors")
    return common


def _output_options(output_help: str) -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("-o", "--output", metavar="OUT", help=output_help)
    options.add_argument(
        "-f", "--force", action="store_true", help="overwrite existing output files"
    )
    options.add_argument(
        "-j",
        "--jobs",
        metavar="N",
        type=worker_count,
        default=1,
        help="process N files at once in worker processes (0: one per CPU; default 1)",
    )
    options.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="run the jobs on the Dask cluster at ADDRESS (e.g. tcp://host:8786) instead of "
        "-j; its workers must see the same files (needs the vqformat[dask] extra)",
    )
    options.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    return options


def _add_file_command(
    subparsers: argparse._SubParsersAction,
    name: str,
    summary: str,
    examples: str,
    run: Callable[[argparse.Namespace], int],
    inputs_help: str,
) -> argparse.ArgumentParser:
    """A command over many input files, with the output options of encode and decode."""
    output_help = "output file; with several inputs, a folder (default: beside each)"
    parser = _add_command(subparsers, name, summary, examples, run, [_output_options(output_help)])
    parser.add_argument("inputs", nargs="+", metavar="IN", help=inputs_help)
    return parser


def _add_command(
    subparsers: argparse._SubParsersAction,
    name: str,
    summary: str,
    examples: str,
    run: Callable[[argparse.Namespace], int],
    parents: Sequence[argparse.ArgumentParser] = (),
) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        name,
        help=summary,
        description=summary,
        epilog=f"examples:\n{examples}",
        parents=[*parents, _common_options()],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(run=run, command_parser=parser)
    return parser


# --- encode ------------------------------------------------------------------------------


def add_encode(subparsers: argparse._SubParsersAction) -> None:
    parser = _add_file_command(
        subparsers,
        "encode",
        "Encode images (any format Pillow reads) into .vqi files.",
        "  vqi encode photo.jpg                   writes photo.vqi\n"
        "  vqi encode -k 16 photo.png -o small.vqi\n"
        "  vqi encode --skip-if-larger -j 0 *.png -o out/\n"
        "  vqi encode - < photo.png > photo.vqi   stdin to stdout\n",
        run_encode,
        "image files; '-' reads stdin",
    )
    for name in command_line_options():
        add_encode_option(parser, name)
    parser.add_argument(
        "--dither-strength",
        dest="dither",
        type=_checked_option("dither", float),
        metavar="S",
        help="error diffusion of strength S, 0..1 (--dither is 1; 0 does not dither)",
    )
    parser.add_argument(
        "--skip-if-larger",
        action="store_true",
        help="do not write a result that is not smaller than its input (exit status 98)",
    )
    parser.add_argument(
        "--strip",
        action="store_true",
        help="drop the input's colour profile, EXIF, XMP and text (kept by default)",
    )
    parser.add_argument(
        "--no-pixel-limit",
        dest="pixel_limit",
        action="store_false",
        help="encode images over Pillow's decompression-bomb limit (about 179 megapixels); "
        "only for inputs you trust",
    )
    add_frame_option(parser)
    parser.add_argument(
        "--palette",
        metavar="FILE",
        help="encode every image with this palette file (from vqi fit-palette) instead of "
        "fitting one; -k and --method are then unused",
    )


def add_frame_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--frame",
        type=_frame_number,
        metavar="N",
        help="read frame N (from 0) of animations and multi-page files, which are refused "
        "without it: a .vqi file holds one image",
    )


def run_encode(args: argparse.Namespace) -> int:
    targets = plan_targets(args.inputs, args.output, ".vqi")
    shared_palette = _read_palette_file(args.palette) if args.palette else None
    options = EncodeOptions.from_mapping({**vars(args), "palette": shared_palette})
    # One file, encoded in this process: a bar of its progress (several files get a
    # bar of files from the batch's reporter instead).
    progress = len(args.inputs) == 1 and not args.quiet and not args.dask and sys.stderr.isatty()
    jobs = [
        EncodeJob(
            source=source,
            target=target,
            force=args.force,
            options=options,
            skip_if_larger=args.skip_if_larger,
            strip=args.strip,
            pixel_limit=args.pixel_limit,
            progress=progress,
            frame=args.frame,
        )
        for source, target in zip(args.inputs, targets, strict=True)
    ]
    return _run_batch(encode_file, jobs, args, "encoded")


# --- decode ------------------------------------------------------------------------------


def add_decode(subparsers: argparse._SubParsersAction) -> None:
    parser = _add_file_command(
        subparsers,
        "decode",
        "Decode .vqi files into PNG or any format Pillow writes, chosen by the extension.",
        "  vqi decode photo.vqi                   writes photo.png\n"
        "  vqi decode photo.vqi -o photo.webp\n"
        "  vqi decode --format tiff *.vqi -o out/\n"
        "  vqi decode - < photo.vqi > photo.png   stdin to stdout (PNG)\n",
        run_decode,
        ".vqi files; '-' reads stdin",
    )
    parser.add_argument(
        "--format",
        metavar="EXT",
        help="output format by extension, e.g. png, webp, tiff, bmp "
        "(default: the extension of -o, else png)",
    )
    parser.add_argument(
        "--lossy",
        action="store_true",
        help="accept a format that cannot hold the image exactly (JPEG, alpha into BMP, "
        "...); without it such a file is refused with exit status 16",
    )


def run_decode(args: argparse.Namespace) -> int:
    suffix = "." + (args.format or "png").lower().lstrip(".")
    targets = plan_targets(args.inputs, args.output, suffix)
    try:
        formats = [output_format(target, args.format) for target in targets]
        named = [output_format(target, None) for target in targets if target != STDIO]
    except ValueError as error:
        raise UsageError(str(error)) from None
    if args.format and named and named[0] != formats[0] and os.path.splitext(targets[0])[1]:
        raise UsageError(f"--format {args.format} contradicts the extension of {targets[0]}")
    jobs = [
        DecodeJob(
            source=source,
            target=target,
            force=args.force,
            image_format=image_format,
            lossy=args.lossy,
        )
        for source, target, image_format in zip(args.inputs, targets, formats, strict=True)
    ]
    return _run_batch(decode_file, jobs, args, "decoded")


def _run_batch(work: Callable, jobs: Sequence, args: argparse.Namespace, verb: str) -> int:
    if args.dask and args.jobs != 1:
        raise UsageError("--dask runs the jobs on the cluster: -j does not apply")
    folder = output_folder(args.inputs, args.output)
    if folder is not None:
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as error:
            print(f"vqi: {folder}: cannot create the folder: {describe(error)}", file=sys.stderr)
            return ExitStatus.UNWRITABLE
    reporter = Reporter(len(jobs), verb, quiet=args.quiet, debug=args.debug)
    try:
        with _mapper(args, len(jobs)) as mapper:
            results = run_jobs(work, jobs, mapper, reporter)
    except Interrupted as interruption:
        reporter.interrupted(interruption.results)
        return ExitStatus.INTERRUPTED
    except (ImportError, ConnectionError) as error:  # no dask, or no cluster: no job has run
        raise UsageError(str(error)) from None
    return overall_status(results)


def _mapper(args: argparse.Namespace, jobs: int) -> contextlib.AbstractContextManager[Mapper]:
    if args.dask:
        from .distributed import cluster_mapper

        return cluster_mapper(args.dask)
    return local_mapper(args.jobs, jobs)


# --- fit-palette -------------------------------------------------------------------------


def add_fit_palette(subparsers: argparse._SubParsersAction) -> None:
    parser = _add_command(
        subparsers,
        "fit-palette",
        "Fit one palette to a collection of images, reading one image at a time, and write "
        "it as a palette file for vqi encode --palette (same colours in every file).",
        "  vqi fit-palette -k 64 images/*.png -o palette.vqi\n"
        "  vqi encode --palette palette.vqi images/*.png -o out/\n",
        run_fit_palette,
    )
    parser.add_argument("inputs", nargs="+", metavar="IN", help="image files, all of one mode")
    parser.add_argument(
        "-o", "--output", required=True, metavar="PALETTE", help="the palette file to write"
    )
    add_encode_option(parser, "colors")
    add_frame_option(parser)
    parser.add_argument("-f", "--force", action="store_true", help="overwrite the output file")
    parser.add_argument("-q", "--quiet", action="store_true", help="print errors only")


def run_fit_palette(args: argparse.Namespace) -> int:
    if STDIO in args.inputs:
        raise UsageError("fit-palette reads files; '-' (standard input) is not one")
    folder = output_folder(args.inputs[:1], args.output)  # '-o DIR/' as encode reads it
    if folder is not None:
        args.output = os.path.join(folder, "palette.vqi")
    try:
        if folder is not None:
            with writing(args.output):
                os.makedirs(folder, exist_ok=True)
        check_output(args.output, args.force)
        with failing_as(ExitStatus.INPUT, "fit a palette"):
            fitted = dataset.fit_palette(_named_pixels(args.inputs, args.frame), args.colors)
        with writing(args.output):
            write_output(args.output, lambda out: dataset.write_palette(out, fitted), args.force)
    except JobFailure as failure:
        print(f"vqi: {failure}", file=sys.stderr)
        return failure.status
    if not args.quiet:
        print(
            f"{args.output}: {plural(len(fitted), 'colour')} from "
            f"{plural(len(args.inputs), 'image')}",
            file=sys.stderr,
        )
    return ExitStatus.OK


def _named_pixels(sources: Sequence[str], frame: int | None) -> Iterator[np.ndarray]:
    """Each image's pixels in turn; a failure names its file."""
    for source in sources:
        try:
            yield read_pixels(source, frame)
        except JobFailure as failure:
            raise JobFailure(failure.status, f"{source}: {failure}") from failure


def _read_palette_file(path: str) -> np.ndarray:
    try:
        return dataset.read_palette(path)
    except VQIError as error:
        raise UsageError(f"--palette {path}: {_not_a_palette(path) or error}") from None
    except OSError as error:
        raise UsageError(f"--palette {path}: cannot read: {describe(error)}") from None


def _not_a_palette(path: str) -> str:
    """Why an ordinary .vqi image is no palette file, and how to make one; else ''."""
    try:
        info = vqformat.read_info(path)
    except (VQIError, OSError):
        return ""
    return (
        f"a {info.width}x{info.height} image, not a palette file "
        "(make one with: vqi fit-palette IMAGES -o palette.vqi)"
    )


# --- info --------------------------------------------------------------------------------


def add_info(subparsers: argparse._SubParsersAction) -> None:
    parser = _add_command(
        subparsers,
        "info",
        "Show the header of .vqi files and how well they compress (reads the header only).",
        "  vqi info photo.vqi\n  vqi info --json *.vqi | jq '.[].bits_per_pixel'\n",
        run_info,
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help=".vqi files; '-' reads stdin")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print a JSON array with one object per file (failed files carry 'error')",
    )


def describe_info(info: dict) -> str:
    bits = f"{info['bits_per_index']} bit{'' if info['bits_per_index'] == 1 else 's'}"
    return "\n".join(
        (
            f"{info['file']}:",
            f"  size          {info['width']} x {info['height']} pixels, {info['mode']}",
            f"  palette       {info['colors']} colours, {bits} per index",
            f"  compression   {info['compression']}, strips of {info['strip_rows']} rows",
            f"  format        version {info['version']}",
            f"  file          {info['bytes']:,} bytes, {info['bits_per_pixel']:.3f} bits per pixel",
            f"  ratio         {info['ratio']:.2f}:1 against raw {info['mode']} "
            f"({info['raw_bytes']:,} bytes)",
            *describe_metadata(info["metadata"]),
        )
    )


def describe_metadata(metadata: dict) -> list[str]:
    lines = []
    if "icc_profile" in metadata:
        profile = metadata["icc_profile"]
        name = f"{profile['description']!r}, " if profile["description"] else ""
        lines.append(f"  icc profile   {name}{profile['bytes']:,} bytes")
    for key, label in (("exif", "exif"), ("xmp", "xmp")):
        if key in metadata:
            lines.append(f"  {label:<13} {metadata[key]['bytes']:,} bytes")
    if "text" in metadata:
        lines.append(f"  text          {', '.join(metadata['text'])}")
    return lines


def run_info(args: argparse.Namespace) -> int:
    if args.files.count(STDIO) > 1:
        raise UsageError("'-' (standard input) can be read only once")
    entries, statuses = [], []
    for name in args.files:
        try:
            entry = file_info(name)
            statuses.append(ExitStatus.OK)
        except JobFailure as failure:
            if args.debug:
                traceback.print_exc()
            print(f"vqi: {display_name(name, 'stdin')}: {failure}", file=sys.stderr)
            entry = {"file": name, "error": str(failure), "status": int(failure.status)}
            statuses.append(failure.status)
        entries.append(entry)
        if not args.json and "error" not in entry:
            print(describe_info(entry))
    if args.json:
        print(json.dumps(entries, indent=2))
    return next((status for status in statuses if status), ExitStatus.OK)


# --- demo --------------------------------------------------------------------------------


def add_demo(subparsers: argparse._SubParsersAction) -> None:
    parser = _add_command(
        subparsers,
        "demo",
        "Encode scikit-learn's sample photo and a grey image at several palette sizes and "
        "methods; write the .vqi files and a contact sheet; print sizes and PSNR.",
        "  vqi demo -o demo-output\n",
        run_demo,
    )
    parser.add_argument(
        "-o", "--output", metavar="DIR", default="vqi-demo", help="folder (default vqi-demo)"
    )
    parser.add_argument("-f", "--force", action="store_true", help="overwrite earlier results")
    parser.add_argument("-q", "--quiet", action="store_true", help="print errors only")


def run_demo(args: argparse.Namespace) -> int:
    from .demo import run

    return run(args.output, force=args.force, quiet=args.quiet)


def _stdout_closed() -> int:
    """End quietly when the reader of standard output has gone, as ``ls | head`` does:
    no message, and no flush error at exit."""
    with contextlib.suppress(OSError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return ExitStatus.STDOUT_CLOSED


# --- main --------------------------------------------------------------------------------

COMMANDS = (add_encode, add_decode, add_fit_palette, add_info, add_demo)


def build_parser() -> Parser:
    parser = Parser(
        prog="vqi",
        description="vqi: images as a k-means palette plus bit-packed indices.",
        epilog=f"{EXAMPLES}\n{exit_status_table()}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"vqi {vqformat.__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for add in COMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    one_line_warnings()
    args, unknown = build_parser().parse_known_args(argv)
    if unknown:  # named by the command's parser, so that the hint points at its --help
        args.command_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return int(args.run(args))
    except (StdoutClosed, BrokenPipeError):
        return _stdout_closed()
    except MemoryError:
        print("vqi: out of memory", file=sys.stderr)
        return ExitStatus.NO_MEMORY
    except UsageError as error:
        print(f"vqi: {error}", file=sys.stderr)
        return ExitStatus.USAGE
    except KeyboardInterrupt:
        print("vqi: interrupted", file=sys.stderr)
        return ExitStatus.INTERRUPTED
    except Exception as error:
        if args.debug:
            raise
        print(f"vqi: internal error: {error!r} (rerun with --debug for details)", file=sys.stderr)
        return ExitStatus.INTERNAL
