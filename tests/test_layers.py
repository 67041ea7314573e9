"""The package's layers: what each may import, and what decoding costs to import."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENCODE_ONLY = ("sklearn", "scipy", "bitarray", "threadpoolctl", "tqdm")


def test_import_contracts_hold():
    """pyproject.toml's import-linter contracts: each layer imports only those below it."""
    lint = pytest.importorskip("importlinter.cli")
    assert lint.lint_imports(config_filename=str(ROOT / "pyproject.toml")) == 0


def test_decoding_imports_nothing_the_encoder_needs(tmp_path):
    """``import vqformat`` and a decode (and the CLI's info and decode) load no fitting code."""
    import numpy as np

    import vqformat

    path = tmp_path / "a.vqi"
    path.write_bytes(vqformat.encode(np.arange(64, dtype=np.uint8).reshape(8, 8), 4))
    script = (
        "import sys, vqformat\n"
        f"vqformat.decode({str(path)!r}); vqformat.read_info({str(path)!r})\n"
        "from vqformat.cli import main\n"
        f"main(['info', {str(path)!r}])\n"
        f"main(['decode', '-q', {str(path)!r}, '-o', {str(tmp_path / 'a.png')!r}])\n"
        f"print(sorted(m for m in {ENCODE_ONLY!r} if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"
