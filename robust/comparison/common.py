"""What the runners of every framework share: their type, eval mode, refusals and lazy imports.

The other frameworks are imported only when a runner is built, so that the comparison's
tables and checks work without any of them installed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from importlib import import_module
from typing import Any

import torch

from robust.errors import RobustError
from robust.model import Classifier

Runner = Callable[[Classifier, torch.Tensor, torch.Tensor], torch.Tensor]
PIP = {"art": "adversarial-robustness-toolbox", "foolbox": "foolbox", "autoattack": "pyautoattack"}
MODULES = {"art": "art", "foolbox": "foolbox", "autoattack": "pyautoattack"}  # each framework's import name


class FrameworkRefused(RobustError):
    """The framework rejected this run (a value or an input it cannot handle)."""


@contextlib.contextmanager
def eval_mode(model: Classifier) -> Iterator[None]:
    """Eval mode inside the block (the frameworks call ``.eval()`` themselves); every module's mode restored after."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


@contextlib.contextmanager
def refusals(framework: str, attack: str) -> Iterator[None]:
    """A ValueError from the framework (a value it rejects) becomes a RobustError that names it."""
    try:
        yield
    except RobustError:
        raise
    except ValueError as exc:
        raise FrameworkRefused(f"{framework}'s {attack!r} refused: {exc}") from exc


def require(framework: str) -> Any:
    """The framework's top-level module.

    Raises:
        RobustError: it is not installed; the message gives the pip command.
    """
    try:
        return import_module(MODULES[framework])
    except ImportError as exc:
        raise RobustError(f"{framework} is not installed: pip install {PIP[framework]}") from exc
