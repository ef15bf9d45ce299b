"""Robustness in test suites: ``assert_robust``, the conformance kit for plugins, the pytest plugin.

- :func:`assert_robust` (:mod:`~robust.testing.assertions`): fail a test when a model is not robust enough;
- :func:`check_attack` (:mod:`~robust.testing.conformance`): the harness invariants on any attack;
- :mod:`~robust.testing.pytest_plugin`: the ``assert_robust`` fixture, ``-m robustness`` and ``--robust-report``.

Names are imported on first use, so the pytest plugin (loaded by every pytest run) stays light.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "assert_robust": "robust.testing.assertions",
    "RECORDS": "robust.testing.assertions",
    "check_attack": "robust.testing.conformance",
    "attack_checks": "robust.testing.conformance",
    "conformance_case": "robust.testing.conformance",
    "small_digits_model": "robust.testing.conformance",
    "Case": "robust.testing.conformance",
    "CHECKS": "robust.testing.conformance",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'robust.testing' has no attribute {name!r}")
