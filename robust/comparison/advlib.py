"""Runners for adv-lib (Jérôme Rony's library of PyTorch attacks), set from our parameters.

adv-lib assumes inputs in [0, 1]: a model with other bounds ``(lo, hi)`` is shown to it
through ``u -> lo + (hi - lo) u`` (eps, step sizes and DDN's initial norm divided by
``hi - lo``) and its output is mapped back. The output is adv-lib's own, never clipped,
projected or judged: the harness verifies it.

``adv_lib.attacks`` imports ``visdom`` (for an optional live-plot logger) at import time, and
visdom does not build everywhere. Where it is not importable, :func:`attacks` imports adv-lib
with a stand-in ``visdom`` module that raises a clear error if anything uses it, and takes
the stand-in out of ``sys.modules`` right after: the user's environment is left as it was.

Example:
    >>> run = runner("ddn", {**robust.registry.ATTACKS.get("ddn").defaults, "steps": 100}, "l2", None, False)
    >>> x_adv = run(model, x, y)
"""

from __future__ import annotations

import contextlib
import inspect
import sys
import types
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import import_module
from typing import Any

import torch
from torch import nn

from robust.comparison.common import (LIBRARY_ERRORS, Runner, eval_mode, from_unit, kept_gradients, refusals,
                                      require, to_unit)
from robust.errors import RobustError
from robust.attack import num_classes
from robust.model import Classifier

NORMS = {"linf": float("inf"), "l2": 2.0, "l1": 1.0, "l0": 0.0}
LOSSES = {"ce": "ce", "margin": "dl", "dlr": "dlr"}  # our loss names -> adv-lib's
FIXED_EPS = ("pgd", "apgd", "apgd-t")
VISDOM_MISSING = ("adv-lib's live plots (VisdomLogger, callback=) need visdom, which is not installed: "
                  "pip install visdom")


def _placeholder() -> types.ModuleType:
    """A ``visdom`` module whose every attribute raises a RobustError saying what to install."""
    module = types.ModuleType("visdom", "Stand-in for visdom while robust imports adv-lib; visdom is not installed.")

    def missing(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise RobustError(VISDOM_MISSING)

    setattr(module, "__getattr__", missing)  # module-level __getattr__ (PEP 562)
    return module


@contextlib.contextmanager
def _importable_visdom() -> Iterator[None]:
    """Inside the block ``import visdom`` succeeds, with a stand-in if visdom is not importable; restored after."""
    try:
        import_module("visdom")
    except ImportError:
        pass
    else:
        yield
        return
    before = sys.modules.get("visdom", ...)
    sys.modules["visdom"] = _placeholder()
    try:
        yield
    finally:
        if before is ...:
            sys.modules.pop("visdom", None)
        else:
            sys.modules["visdom"] = before  # type: ignore[assignment]


def attacks() -> Any:
    """``adv_lib.attacks``, imported whether or not visdom is installed.

    Raises:
        RobustError: adv-lib is not installed.
    """
    require("adv-lib")
    if "adv_lib.attacks" in sys.modules:
        return sys.modules["adv_lib.attacks"]
    with _importable_visdom(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # its check of torch's version uses distutils
        return import_module("adv_lib.attacks")


@dataclass(frozen=True)
class _Call:
    """One batch for adv-lib: the model on [0, 1], the inputs there, and what the call needs to know."""

    f: nn.Module
    u: torch.Tensor
    y: torch.Tensor
    norm: float
    eps: float | None  # on [0, 1]
    targeted: bool
    span: float
    classes: int
    start: torch.Tensor | None  # FMN's starting points, on [0, 1]


def _budget(c: _Call) -> float:
    assert c.eps is not None  # checked when the runner is made
    return c.eps


def _pgd(al: Any, p: dict[str, Any], c: _Call) -> torch.Tensor:
    return al.pgd_linf(c.f, c.u, c.y, ε=_budget(c), targeted=c.targeted, steps=p["steps"],
                       random_init=p["random_start"], restarts=p["restarts"], loss_function=LOSSES[p["loss"]],
                       absolute_step_size=p["step_size"] / c.span)


def _apgd(al: Any, p: dict[str, Any], c: _Call) -> torch.Tensor:
    return al.apgd(c.f, c.u, c.y, eps=_budget(c), norm=c.norm, targeted=c.targeted, n_iter=p["steps"],
                   n_restarts=p["restarts"], loss_function=p["loss"], rho=p["rho"])


def _apgd_targeted(al: Any, p: dict[str, Any], c: _Call) -> torch.Tensor:
    return al.apgd_targeted(c.f, c.u, c.y, eps=_budget(c), norm=c.norm, n_iter=p["steps"], n_restarts=p["restarts"],
                            rho=p["rho"], num_targets=min(p["targets"], c.classes - 1))


def _fab(targeted_restarts: bool) -> Callable[[Any, dict[str, Any], _Call], torch.Tensor]:
    def run(al: Any, p: dict[str, Any], c: _Call) -> torch.Tensor:
        runs = p["restarts"]
        if targeted_restarts:  # one run per target; more restarts go round every other class again
            runs = min(p["targets"], c.classes - 1) if runs == 1 else (c.classes - 1) * runs
        return al.fab(c.f, c.u, c.y, norm=c.norm, n_iter=p["steps"], ε=c.eps, α_max=p["alpha_max"], β=p["beta"],
                      η=p["eta"], restarts=runs, targeted_restarts=targeted_restarts)
    return run


def _or_one(value: float | None) -> float:
    return 1.0 if value is None else value


def _fmn(al: Any, p: dict[str, Any], c: _Call) -> torch.Tensor:
    return al.fmn(c.f, c.u, c.y, norm=c.norm, targeted=c.targeted, steps=p["steps"], α_init=_or_one(p["alpha_init"]),
                  α_final=p["alpha_final"], γ_init=p["gamma_init"], γ_final=p["gamma_final"],
                  binary_search_steps=p["binary_search_steps"], starting_points=c.start)


def _ddn(al: Any, p: dict[str, Any], c: _Call) -> torch.Tensor:
    return al.ddn(c.f, c.u, c.y, targeted=c.targeted, steps=p["steps"], γ=p["gamma"],
                  init_norm=p["init_norm"] / c.span, levels=None)


def _cw(al: Any, p: dict[str, Any], c: _Call) -> torch.Tensor:
    return al.carlini_wagner_l2(c.f, c.u, c.y, targeted=c.targeted, confidence=p["confidence"], learning_rate=p["lr"],
                                initial_const=p["initial_const"], binary_search_steps=p["binary_search_steps"],
                                max_iterations=p["steps"], abort_early=p["abort_early"])


def _deepfool(al: Any, p: dict[str, Any], c: _Call) -> torch.Tensor:
    return al.df(c.f, c.u, c.y, steps=p["steps"], overshoot=p["overshoot"], norm=c.norm)


_RUN: dict[str, Callable[[Any, dict[str, Any], _Call], torch.Tensor]] = {
    "pgd": _pgd, "apgd": _apgd, "apgd-t": _apgd_targeted, "fab": _fab(False), "fab-t": _fab(True), "fmn": _fmn,
    "ddn": _ddn, "cw": _cw, "deepfool": _deepfool}


def runner(attack: str, p: dict[str, Any], norm: str, eps: float | None, targeted: bool) -> Runner:
    """A function ``(model, x, y) -> x_adv`` running adv-lib's ``attack`` with our parameters ``p``.

    Args:
        attack: pgd, apgd, apgd-t, fab, fab-t, fmn, ddn, cw or deepfool.
        p: every hyperparameter of our attack (defaults filled in), ``norm`` left out.
        norm: "linf", "l2", or (fmn) "l1" or "l0".
        eps: the budget in input space (pgd, apgd, apgd-t; FAB's restart radius); None for the
            minimization attacks runs them unbounded.
        targeted: ``y`` holds target classes.

    adv-lib draws from torch's global generator, seeded by
    :class:`~robust.comparison.external.ExternalAttack`.

    Raises:
        RobustError: adv-lib is not installed, or eps is missing where it is needed.
    """
    al = attacks()
    if attack in FIXED_EPS and eps is None:
        raise RobustError(f"adv-lib's {attack!r} needs eps")

    def run(model: Classifier, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if len(x) == 0:
            return x
        xs, ys = x.detach().to(model.device), y.detach().to(model.device).long()
        u, f = to_unit(model, xs)
        with eval_mode(model), kept_gradients(model), refusals("adv-lib", attack, LIBRARY_ERRORS):
            classes = num_classes(model, xs)
            start = None if p.get("starting_points") is None else to_unit(model, p["starting_points"].to(xs))[0]
            call = _Call(f, u, ys, NORMS[norm], None if eps is None else eps / f.span, targeted, f.span, classes, start)
            out = _RUN[attack](al, p, call)
        return from_unit(model, out, u, x)
    return run


def capabilities() -> dict[str, list[str]]:
    """The attack functions that ``adv_lib.attacks`` exports.

    Raises:
        ImportError: adv-lib is not installed.
    """
    import_module("adv_lib")
    module = attacks()
    found = [name for name, obj in vars(module).items() if not name.startswith("_") and inspect.isfunction(obj)]
    return {"attacks": sorted(found), "defenses": []}

