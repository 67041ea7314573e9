"""Coverage-guided fuzzing of the decoder with atheris (libFuzzer for Python).

    python tools/fuzz/fuzz.py api --corpus DIR [libFuzzer options...]
    python tools/fuzz/fuzz.py pillow --corpus DIR -max_total_time=60

The target names are those of targets.TARGETS. The working corpus directory is
created if needed and seeded with the files of spec/vectors/; libFuzzer adds the
inputs that reach new code to it. A crash, timeout or out-of-memory input is written
as crash-*/timeout-*/oom-* (see -artifact_prefix); once fixed it belongs in
tests/regressions/, named by what it broke and its hash.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["vqformat"]):
    import vqformat  # noqa: F401  (instrumented for coverage before the targets use it)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
import fuzz_targets as targets

VECTORS = Path(__file__).resolve().parents[2] / "spec" / "vectors"
DICTIONARY = Path(__file__).resolve().parent / "vqi.dict"
DEFAULT_OPTIONS = [
    "-max_len=8192",
    "-timeout=10",
    "-rss_limit_mb=3072",
    f"-dict={DICTIONARY}",
    "-print_final_stats=1",
]


def seed_corpus(corpus: Path) -> None:
    """Copy the reference files into the working corpus (never write into spec/)."""
    corpus.mkdir(parents=True, exist_ok=True)
    for vector in VECTORS.glob("*.vqi"):
        if not (corpus / vector.name).exists():
            shutil.copy(vector, corpus / vector.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", choices=sorted(targets.TARGETS))
    parser.add_argument("--corpus", type=Path, required=True, help="working corpus directory")
    args, engine_options = parser.parse_known_args()
    if args.target == "pillow":
        from PIL import Image

        if targets.pillow_format() is None:
            print("fuzz: no Pillow plugin for .vqi is registered; nothing to fuzz", flush=True)
            return
        Image.MAX_IMAGE_PIXELS = targets.FUZZ_MAX_PIXELS
    seed_corpus(args.corpus)
    check = targets.TARGETS[args.target]
    argv = [sys.argv[0], *DEFAULT_OPTIONS, *engine_options, str(args.corpus)]
    atheris.Setup(argv, check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
