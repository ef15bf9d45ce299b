"""The ``robust`` command line: thin wrappers over :mod:`robust.runs`.

Imports run one way: :mod:`~robust.cli.common` (errors and shared options), then one module
per command, then the group in :mod:`~robust.cli.main`.
"""

from robust.cli.main import main

__all__ = ["main"]
