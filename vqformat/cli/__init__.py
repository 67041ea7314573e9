"""The ``vqi`` command line: parsing, per-file jobs, batches, the demo. No codec logic."""

from .main import main

__all__ = ["main"]
