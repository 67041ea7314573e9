"""Run per-file jobs over many inputs: output names, worker processes, progress and summary.

The runner takes any ``map``-like callable, ``mapper(work, jobs) -> results in order``:
the builtin ``map``, ``Executor.map``, or a function that maps over a cluster (a Dask
client's ``map`` followed by ``gather``), so how the jobs are spread is independent of
what they do. Jobs and results are small frozen dataclasses, cheap to pickle.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .jobs import (
    STDIO,
    ExitStatus,
    Result,
    StdoutClosed,
    describe,
    display_name,
    one_line_warnings,
    plural,
    stop_on_interrupt,
)

Mapper = Callable[[Callable[[Any], Result], Iterable[Any]], Iterable[Result]]


class UsageError(Exception):
    """The command line asks for something impossible; nothing has been done yet."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a batch; ``results`` are those of the files already finished."""

    def __init__(self, results: list[Result]) -> None:
        super().__init__()
        self.results = results


# --- output names ------------------------------------------------------------------------


def output_folder(sources: Sequence[str], output: str | None) -> str | None:
    """The folder ``-o`` names, or None when it names the output file itself (or is absent).

    ``-o`` names a folder if it ends with a separator or is an existing folder; with
    several inputs it must.
    """
    if output is None or output == STDIO:
        if output == STDIO and len(sources) > 1:
            raise UsageError("only one input can be written to standard output")
        return None
    if output.endswith(("/", os.sep)) or os.path.isdir(output):
        return output
    if len(sources) > 1:
        raise UsageError(f"with several inputs, -o must name a folder (end it with '/'): {output}")
    return None


def plan_targets(sources: Sequence[str], output: str | None, suffix: str) -> list[str]:
    """The output path of each source, pngquant-style.

    One source: ``output`` names the file (or a folder to put it in); without it the
    output goes beside the source with ``suffix``, and stdin goes to stdout. Several
    sources: outputs go beside them, or into the folder ``output``.
    """
    if STDIO in sources and len(sources) > 1:
        raise UsageError("'-' (standard input) cannot be combined with other inputs")
    if output == "" or "" in sources:
        raise UsageError("an empty file name names no file")
    folder = output_folder(sources, output)
    targets = [_target(source, output, folder, suffix) for source in sources]
    _check_distinct(sources, targets)
    return targets


def _target(source: str, output: str | None, folder: str | None, suffix: str) -> str:
    if folder is not None:
        stem = "stdin" if source == STDIO else Path(source).stem
        return os.path.join(folder, stem + suffix)
    if output is not None:
        return output
    if source == STDIO:
        return STDIO
    return str(Path(source).with_suffix(suffix))


def _check_distinct(sources: Sequence[str], targets: Sequence[str]) -> None:
    """Two jobs must not write one file, and no job may write over its own input."""
    seen: dict[str, str] = {}
    for source, target in zip(sources, targets, strict=True):
        if target == STDIO:
            continue
        key = os.path.normcase(os.path.abspath(target))
        if key in seen:
            raise UsageError(f"{seen[key]} and {source} would both be written to {target}")
        seen[key] = source
        if source != STDIO and (
            key == os.path.normcase(os.path.abspath(source)) or _same_file(source, target)
        ):
            raise UsageError(f"{source}: the output would replace the input")


def _same_file(first: str, second: str) -> bool:
    """Whether two existing paths are one file (links included); False if either is missing."""
    try:
        return os.path.samefile(first, second)
    except OSError:
        return False


# --- running -----------------------------------------------------------------------------


def _start_worker(threads: int) -> None:
    """Keep worker processes from each starting one compute thread per core, and make
    them stop at Ctrl-C and show warnings as one line, as the main process does."""
    stop_on_interrupt()
    one_line_warnings()
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, str(threads))


@contextmanager
def process_pool(workers: int) -> Iterator[Mapper]:
    """A mapper over ``workers`` fresh processes (spawned: forking a threaded parent is unsafe)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    threads = max(1, (os.cpu_count() or 1) // workers)
    with ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(threads,),
    ) as executor:
        mapper = PoolMapper(executor)
        try:
            yield mapper
        except BaseException as error:
            executor.shutdown(wait=True, cancel_futures=True)
            if isinstance(error, Interrupted):
                raise Interrupted(mapper.finished()) from None
            raise


class PoolMapper:
    """``Executor.map`` that can tell, after an interruption, which jobs had finished."""

    def __init__(self, executor: Any) -> None:
        self.executor = executor
        self.futures: list[Any] = []

    def __call__(self, work: Callable[[Any], Result], jobs: Iterable[Any]) -> Iterator[Result]:
        self.futures = [self.executor.submit(work, job) for job in jobs]
        return (future.result() for future in self.futures)

    def finished(self) -> list[Result]:
        """The results of the jobs that ran to the end, in job order."""
        return [
            future.result()
            for future in self.futures
            if future.done() and not future.cancelled() and future.exception() is None
        ]


@contextmanager
def local_mapper(workers: int, jobs: int) -> Iterator[Mapper]:
    """Run in this process when one worker (or one job) is enough, else in a process pool."""
    if workers <= 1 or jobs <= 1:
        yield map
    else:
        with process_pool(min(workers, jobs)) as mapper:
            yield mapper


class Reporter:
    """Prints one line per file and a summary on stderr, with a progress bar on a terminal."""

    def __init__(self, total: int, verb: str, *, quiet: bool, debug: bool) -> None:
        self.verb, self.quiet, self.debug = verb, quiet, debug
        self.bar = None
        if total > 1 and not quiet and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="file", file=sys.stderr, leave=False)

    def say(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr)

    def result(self, result: Result) -> None:
        source = display_name(result.source, "stdin")
        target = display_name(result.target, "stdout")
        if result.status == ExitStatus.OK:
            if not self.quiet:
                self.say(f"{source} -> {target}: {result.message}")
        elif result.status == ExitStatus.SKIPPED:
            if not self.quiet:
                self.say(f"{source}: {result.message}")
        else:
            if self.debug and result.detail:
                self.say(result.detail.rstrip())
            self.say(f"vqi: {source}: {result.message}")
        if self.bar is not None:
            self.bar.update()

    def close(self) -> None:
        """Remove the progress bar, so that later messages start on a clean line."""
        if self.bar is not None:
            self.bar.close()

    def interrupted(self, results: Sequence[Result]) -> None:
        """After Ctrl-C: which outputs were written; no other file was touched."""
        written = [display_name(r.target, "stdout") for r in results if r.status == ExitStatus.OK]
        listing = f": {', '.join(written)}" if written else ""
        print(
            f"vqi: interrupted; {plural(len(written), 'output')} written{listing}; "
            "no other output was written",
            file=sys.stderr,
        )

    def summarize(self, results: Sequence[Result]) -> None:
        if len(results) > 1 and not self.quiet:
            print(summary(results, self.verb), file=sys.stderr)


def summary(results: Sequence[Result], verb: str) -> str:
    """One line: how many files did what, and the bytes in and out of those that succeeded."""
    done = [result for result in results if result.status == ExitStatus.OK]
    skipped = sum(result.status == ExitStatus.SKIPPED for result in results)
    failed = len(results) - len(done) - skipped
    line = f"{len(results)} files: {len(done)} {verb}, {skipped} skipped, {failed} failed"
    read = sum(result.input_bytes for result in done)
    written = sum(result.output_bytes for result in done)
    if read:
        line += f"; {read:,} -> {written:,} bytes ({written / read:.1%})"
    return line


def overall_status(results: Iterable[Result]) -> ExitStatus:
    """The first failure's status; else SKIPPED if a file was skipped; else OK."""
    statuses = [result.status for result in results]
    for status in statuses:
        if status not in (ExitStatus.OK, ExitStatus.SKIPPED):
            return status
    return ExitStatus.SKIPPED if ExitStatus.SKIPPED in statuses else ExitStatus.OK


def run_jobs(
    work: Callable[[Any], Result], jobs: Sequence[Any], mapper: Mapper, reporter: Reporter
) -> list[Result]:
    """Map ``work`` over ``jobs``, reporting each result as it arrives.

    If the executor itself breaks (a worker killed by the system, say), the jobs it did
    not finish are reported as failed rather than lost.
    """
    results: list[Result] = []
    try:
        for result in mapper(work, jobs):
            reporter.result(result)
            results.append(result)
    except StdoutClosed:
        raise
    except KeyboardInterrupt:
        raise Interrupted(results) from None
    except Exception as error:
        for job in jobs[len(results) :]:
            lost = Result(
                job.source, job.target, ExitStatus.INTERNAL, f"worker failed: {describe(error)}"
            )
            reporter.result(lost)
            results.append(lost)
    finally:
        reporter.close()
    reporter.summarize(results)
    return results
