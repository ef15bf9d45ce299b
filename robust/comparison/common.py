"""What the runners of every framework share: their type, eval mode, refusals, lazy imports and bounds.

The other frameworks are imported only when a runner is built, so that the comparison's
tables and checks work without any of them installed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from importlib import import_module
from typing import Any

import torch
from torch import nn

from robust.errors import RobustError
from robust.model import Classifier

Runner = Callable[[Classifier, torch.Tensor, torch.Tensor], torch.Tensor]
FIXED_EPS = ("fgsm", "pgd", "mi-fgsm", "apgd", "apgd-t", "square", "standard")  # the others minimize the distance
# What follows ``pip install`` for each framework. torchattacks, adv-lib and CleverHans declare
# dependencies that conflict with ours or do not build (requests~=2.25.1, visdom,
# tensorflow-probability) and need none of them for their PyTorch attacks: they go in without them.
PIP = {"art": "adversarial-robustness-toolbox", "foolbox": "foolbox", "autoattack": "pyautoattack",
       "torchattacks": "--no-deps torchattacks==3.5.1", "adv-lib": "--no-deps adv-lib==0.2.8",
       "cleverhans": "--no-deps cleverhans==4.0.0"}
MODULES = {"art": "art", "foolbox": "foolbox", "autoattack": "pyautoattack",  # each framework's import name
           "torchattacks": "torchattacks", "adv-lib": "adv_lib", "cleverhans": "cleverhans"}
# What a library raises on a batch it cannot handle (an assertion, an index past the classes):
# the batch counts as failed, with a warning. Running out of memory is never one of them.
LIBRARY_ERRORS: tuple[type[Exception], ...] = (ValueError, AssertionError, RuntimeError, IndexError,
                                               ZeroDivisionError)


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
def refusals(framework: str, attack: str, errors: tuple[type[Exception], ...] = (ValueError,)) -> Iterator[None]:
    """An error of ``errors`` from the framework (a value it rejects) becomes a RobustError that names it."""
    try:
        yield
    except (RobustError, torch.OutOfMemoryError):
        raise
    except errors as exc:
        detail = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
        raise FrameworkRefused(f"{framework}'s {attack!r} refused: {detail}") from exc


@contextlib.contextmanager
def kept_gradients(model: nn.Module) -> Iterator[None]:
    """The parameters' ``.grad`` as they were: libraries that call ``backward()`` fill them as a side effect."""
    grads = [(p, p.grad) for p in model.parameters()]
    try:
        yield
    finally:
        for p, grad in grads:
            p.grad = grad


def pick(p: dict[str, Any], **theirs: str) -> dict[str, Any]:
    """``{their_name: p[our_name]}`` for values that pass unchanged."""
    return {name: p[ours] for name, ours in theirs.items()}


def require(framework: str) -> Any:
    """The framework's top-level module.

    Raises:
        RobustError: it is not installed; the message gives the pip command.
    """
    try:
        return import_module(MODULES[framework])
    except ImportError as exc:
        raise RobustError(f"{framework} is not installed: pip install {PIP[framework]}") from exc


class Unit(nn.Module):
    """The model seen on [0, 1]: ``u -> model(lo + span * u)``, reshaped to the data's shape and dtype.

    For the libraries that assume inputs in [0, 1]; bounds (0, 1) pass unchanged.
    """

    def __init__(self, model: Classifier, lo: float, span: float, shape: torch.Size, dtype: torch.dtype) -> None:
        super().__init__()
        self.model, self.lo, self.span, self.shape, self.dtype = model, lo, span, shape, dtype

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        x = u if (self.lo, self.span) == (0.0, 1.0) else self.lo + self.span * u
        return self.model(x.reshape(-1, *self.shape).to(self.dtype))


def to_unit(model: Classifier, xs: torch.Tensor, images: bool = False) -> tuple[torch.Tensor, Unit]:
    """``xs`` (on the model's device) as float32 inputs in [0, 1], with the model that takes them.

    Args:
        model: the classifier; its bounds ``(lo, hi)`` map to [0, 1].
        xs: the inputs, within the bounds.
        images: show flat inputs ``(n, d)`` as one row of pixels ``(n, 1, 1, d)`` (for code that
            needs image-shaped tensors).
    """
    lo, hi = model.bounds
    span = hi - lo
    u = ((xs - lo) / span if (lo, span) != (0.0, 1.0) else xs).float()
    u = u[:, None, None, :] if images and u.ndim == 2 else u
    unit = Unit(model, lo, span, xs.shape[1:], xs.dtype)
    unit.training = False  # the wrapper alone: the model's modes are the runner's eval_mode to set and restore
    return u, unit


def from_unit(model: Classifier, out: torch.Tensor, u: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A library's output on [0, 1] back in the model's bounds, on ``x``'s device, dtype and shape.

    Coordinates the library left alone come back exactly equal to ``x``'s.
    """
    lo, hi = model.bounds
    span = hi - lo
    out = out.detach().to(u.device)
    if (lo, span) != (0.0, 1.0):
        xs = x.detach().to(u.device).reshape(u.shape)
        out = torch.where(out == u, xs, lo + span * out)
    return out.reshape(x.shape).to(device=x.device, dtype=x.dtype)
