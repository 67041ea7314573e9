"""``python -m vqformat.cli``: the ``vqi`` command."""

import sys

from .main import main

sys.exit(main())
