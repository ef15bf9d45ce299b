"""Exceptions that carry a message meant for the user.

The CLI turns :class:`RobustError` into a one-line message and exit code 2.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class RobustError(ValueError):
    """Bad input from the user: unknown names, out-of-range values, missing files."""


def suggest(name: str, choices: Iterable[str]) -> str:
    """Return a ``" (did you mean 'x'?)"`` suffix for the closest choice, or ``""``."""
    close = difflib.get_close_matches(name, list(choices), n=2, cutoff=0.5)
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"
