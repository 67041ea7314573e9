"""Time and memory of encoding and decoding large images, read from the OS.

Builds synthetic RGB images (smooth gradients, noise and flat shapes, so that fitting
a palette is not trivial) as memmapped .npy files in a temporary directory, band by
band, then encodes and decodes each in a fresh subprocess. For every run it prints
the wall time, the peak that tracemalloc saw (numpy buffers, not a memmap's pages),
and the process's peak resident set size from the OS (``VmHWM`` in /proc/self/status,
Linux; less that of a process that only imports what the operation needs), each also
as a ratio to the raw bytes or decoded output. (``wait4``'s ``ru_maxrss`` would do
too, but Linux carries the parent's peak into a child across vfork and exec.)
Timings are noisy on a shared machine: ``--repeat`` takes medians.

    python tools/bench_large.py                      # 4, 16 and 64 MP, then a 1 GB input
    python tools/bench_large.py --sizes 2048 4096    # square sides to run
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np

BAND_ROWS = 256
ONE_GIGABYTE_SIDE = 18480  # 18480 x 18480 x 3 bytes: just over 1 GiB


def make_image(path: Path, side: int, seed: int = 0) -> np.memmap:
    """A side x side RGB memmap, written a band of rows at a time."""
    image = np.lib.format.open_memmap(path, "w+", np.uint8, (side, side, 3))
    x = np.linspace(0.0, 1.0, side, dtype=np.float32)
    for first in range(0, side, BAND_ROWS):
        y = np.linspace(first / side, min(first + BAND_ROWS, side) / side, BAND_ROWS)
        y = y[: min(BAND_ROWS, side - first), None].astype(np.float32)
        rng = np.random.default_rng((seed, first))
        red = 255 * x[None, :] * (1 - y)
        green = 255 * (0.5 + 0.5 * np.sin(6 * np.pi * (x[None, :] + y**2)))
        blue = 255 * y * np.ones_like(x)[None, :]
        band = np.stack([red, green, blue], axis=-1)
        band += rng.normal(0, 8, band.shape).astype(np.float32)
        disc = (x[None, :] - 0.3) ** 2 + (y - 0.6) ** 2 < 0.02
        band[disc] = (230, 40, 60)
        band[(np.abs(x[None, :] - 0.75) < 0.05) & (np.abs(y - 0.25) < 0.15)] = (20, 20, 20)
        image[first : first + len(y)] = np.clip(band, 0, 255).astype(np.uint8)
    image.flush()
    return image


def child(operation: str, source: str, target: str, traced: str) -> None:
    """Run one operation in this process and print its time and tracemalloc peak.

    tracemalloc's own bookkeeping inflates the resident set and slows Python code, so
    times and RSS come from untraced runs and the traced peak from a separate run.
    """
    import vqformat  # imported before tracing: module objects are not the codec's memory

    if operation.startswith("baseline"):
        if operation == "baseline-encode":
            import sklearn.cluster  # noqa: F401
        print(
            json.dumps(
                {
                    "seconds": 0.0,
                    "traced": 0,
                    "rss": status_bytes("VmHWM"),
                    "anon": status_bytes("RssAnon"),
                }
            )
        )
        return
    if operation == "map":  # the palette of an encoded file, to encode again without fitting
        palette = vqformat.decode_indexed(target, rows=slice(0, 0))[0]
    if traced == "traced":
        tracemalloc.start()
    anonymous = AnonymousPeak()
    anonymous.start()
    start = time.perf_counter()
    if operation == "encode":
        vqformat.save(target, np.load(source, mmap_mode="r"))
        output = 0
    elif operation == "map":
        vqformat.save(f"{target}.map", np.load(source, mmap_mode="r"), palette=palette)
        output = 0
    elif operation == "decode":
        output = vqformat.decode(source).nbytes
    else:  # a band of 1/16 of the rows from the middle
        height = vqformat.read_info(source).height
        output = vqformat.decode(source, rows=slice(height // 2, height // 2 + height // 16)).nbytes
    seconds = time.perf_counter() - start
    result = {"seconds": seconds, "traced": tracemalloc.get_traced_memory()[1], "output": output}
    result.update(rss=status_bytes("VmHWM"), anon=anonymous.stop())
    print(json.dumps(result))


def status_bytes(field: str) -> int:
    """A memory figure of this process from /proc/self/status (Linux), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise SystemExit(f"no {field} in /proc/self/status: this tool needs Linux")


class AnonymousPeak(threading.Thread):
    """Polls RssAnon: resident memory that is not file pages (a memmap's pages are).

    The kernel keeps no peak of it, so this samples every few milliseconds.
    """

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = status_bytes("RssAnon")
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.005):
            self.peak = max(self.peak, status_bytes("RssAnon"))

    def stop(self) -> int:
        self.done.set()
        self.join()
        return max(self.peak, status_bytes("RssAnon"))


def run_child(
    operation: str, source: Path | str = "", target: Path | str = "", traced: str = "untraced"
) -> dict:
    """Run ``child`` in a fresh interpreter and return what it measured."""
    command = [sys.executable, __file__, "--child", operation, str(source), str(target), traced]
    completed = subprocess.run(command, stdout=subprocess.PIPE, check=False)
    if completed.returncode:
        raise SystemExit(f"{operation} of {source} failed")
    return json.loads(completed.stdout)


def median_run(repeat: int, *args) -> dict:
    runs = [run_child(*args) for _ in range(repeat)]
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def megabytes(size: float) -> str:
    return f"{size / 1e6:8.1f}"


COLUMNS = (
    "    MP   raw MB |    enc s    map s  tm MB  anon+ MB  RSS+ MB |"
    "    dec s  tm/out anon+/out RSS+/out | band/full  file MB"
)


def measure(side: int, folder: Path, repeat: int, baseline: dict[str, dict]) -> dict:
    """Encode, decode and band-decode one synthetic image; print one row of the table."""
    source = folder / f"{side}.npy"
    make_image(source, side)
    raw = side * side * 3
    target = folder / f"{side}.vqi"
    encode = median_run(repeat, "encode", source, target)
    encode["traced"] = run_child("encode", source, target, "traced")["traced"]
    mapping = median_run(repeat, "map", source, target)
    Path(f"{target}.map").unlink()
    decode = median_run(repeat, "decode", target)
    decode["traced"] = run_child("decode", target, "", "traced")["traced"]
    band = median_run(repeat, "band", target)
    source.unlink()
    size = target.stat().st_size
    target.unlink()
    added = {
        operation: {key: result[key] - baseline[operation][key] for key in ("anon", "rss")}
        for operation, result in (("encode", encode), ("decode", decode))
    }
    output = decode["output"]
    print(
        f"{side * side / 1e6:6.0f} {megabytes(raw)} | {encode['seconds']:8.1f} "
        f"{mapping['seconds']:8.1f} {megabytes(encode['traced'])[2:]} "
        f"{megabytes(added['encode']['anon'])}  "
        f"{megabytes(added['encode']['rss'])} | {decode['seconds']:8.2f} "
        f"{decode['traced'] / output:7.3f} {added['decode']['anon'] / output:9.3f} "
        f"{added['decode']['rss'] / output:8.3f} | "
        f"{band['seconds'] / decode['seconds']:9.3f} {megabytes(size)}",
        flush=True,
    )
    return {"encode": encode["seconds"], "map": mapping["seconds"], "traced": encode["traced"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 4096, 8192])
    parser.add_argument("--gigabyte", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--repeat", type=int, default=1, help="runs per figure (median)")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    baseline = {
        operation: median_run(args.repeat, f"baseline-{operation}")
        for operation in ("encode", "decode")
    }
    print(
        f"baseline RSS {baseline['encode']['rss'] / 1e6:.1f} MB importing vqformat and "
        f"scikit-learn, {baseline['decode']['rss'] / 1e6:.1f} MB vqformat alone: subtracted "
        "(+) from encode and decode figures.\nmap = encode with the palette given (no fit); "
        "tm = tracemalloc peak; anon = peak RssAnon (sampled); RSS = VmHWM, which counts "
        "the memmap's file pages read by encode."
    )
    print(COLUMNS)
    sides = args.sizes + ([ONE_GIGABYTE_SIDE] if args.gigabyte else [])
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for side in sides:
            results[side] = measure(side, Path(folder), args.repeat, baseline)
    if 4096 in results and 8192 in results:
        for key, what in (("encode", "encode"), ("map", "encode with a given palette")):
            ratio = results[8192][key] / results[4096][key]
            print(f"{what} time, 64 MP / 16 MP: {ratio:.2f} (linear: 4.00)")
    peaks = ", ".join(f"{side}^2: {results[side]['traced'] / 1e6:.1f} MB" for side in results)
    print(f"encode tracemalloc peaks: {peaks}")


if __name__ == "__main__":
    main()
