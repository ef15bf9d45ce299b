"""Runners for CleverHans 4's PyTorch attacks (``cleverhans.torch.attacks``), set from our parameters.

CleverHans takes the model's bounds itself (``clip_min``, ``clip_max``), so inputs pass
unchanged. The output is CleverHans' own, never clipped, projected or judged: the harness
verifies it. Its random start draws from torch's global generator, seeded by
:class:`~robust.comparison.external.ExternalAttack`. Only the three modules used are
imported: the package's TensorFlow and JAX parts are never touched.

Example:
    >>> run = runner("fgsm", {"loss": "ce"}, "linf", 0.3, False)
    >>> x_adv = run(model, x, y)
"""

from __future__ import annotations

import pkgutil
from collections.abc import Callable
from importlib import import_module
from typing import Any

import numpy as np
import torch

from robust.comparison.common import LIBRARY_ERRORS, Runner, Unit, eval_mode, kept_gradients, refusals, require
from robust.errors import RobustError
from robust.attack import num_classes
from robust.model import Classifier

NORMS = {"linf": np.inf, "l2": 2}
PACKAGE = "cleverhans.torch.attacks"
Call = Callable[[Unit, torch.Tensor, torch.Tensor], torch.Tensor]


def _function(name: str) -> Any:
    return getattr(import_module(f"{PACKAGE}.{name}"), name)


def _fgsm(p: dict[str, Any], norm: str, eps: float, targeted: bool, bounds: tuple[float, float]) -> Call:
    fgm = _function("fast_gradient_method")
    return lambda model, x, y: fgm(model, x, eps, NORMS[norm], clip_min=bounds[0], clip_max=bounds[1], y=y,
                                   targeted=targeted)


def _pgd(p: dict[str, Any], norm: str, eps: float, targeted: bool, bounds: tuple[float, float]) -> Call:
    pgd = _function("projected_gradient_descent")
    return lambda model, x, y: pgd(model, x, eps, p["step_size"], p["steps"], NORMS[norm], clip_min=bounds[0],
                                   clip_max=bounds[1], y=y, targeted=targeted, rand_init=p["random_start"])


def _cw(p: dict[str, Any], norm: str, eps: float, targeted: bool, bounds: tuple[float, float]) -> Call:
    cw = _function("carlini_wagner_l2")

    def call(model: Unit, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        classes = num_classes(model.model, x)
        return cw(model, x, classes, y=y, targeted=targeted, lr=p["lr"], confidence=p["confidence"],
                  clip_min=bounds[0], clip_max=bounds[1], initial_const=p["initial_const"],
                  binary_search_steps=p["binary_search_steps"], max_iterations=p["steps"])
    return call


_BUILD = {"fgsm": _fgsm, "pgd": _pgd, "cw": _cw}


def runner(attack: str, p: dict[str, Any], norm: str, eps: float | None, targeted: bool) -> Runner:
    """A function ``(model, x, y) -> x_adv`` running CleverHans' ``attack`` with our parameters ``p``.

    Args:
        attack: fgsm, pgd or cw.
        p: every hyperparameter of our attack (defaults filled in, step sizes resolved), ``norm`` left out.
        norm: "linf" or "l2".
        eps: the budget in input space (fgsm, pgd); cw runs unbounded.
        targeted: ``y`` holds target classes.

    Raises:
        RobustError: CleverHans is not installed, or eps is missing where it is needed.
    """
    require("cleverhans")
    if eps is None and attack != "cw":
        raise RobustError(f"cleverhans' {attack!r} needs eps")
    budget = float(eps or 0.0)

    def run(model: Classifier, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if len(x) == 0:
            return x
        xs, ys = x.detach().to(model.device), y.detach().to(model.device).long()
        with eval_mode(model), kept_gradients(model), refusals("cleverhans", attack, LIBRARY_ERRORS):
            call = _BUILD[attack](p, norm, budget, targeted, model.bounds)
            out = call(Unit(model, 0.0, 1.0, xs.shape[1:], xs.dtype).eval(), xs, ys)  # casts CleverHans' float32
        return out.detach().to(device=x.device, dtype=x.dtype)
    return run


def capabilities() -> dict[str, list[str]]:
    """The attack modules of ``cleverhans.torch.attacks``, each named after its function (listed, not imported).

    Raises:
        ImportError: CleverHans is not installed.
    """
    import_module("cleverhans")  # the top-level import first: a blocked package counts as missing
    package = import_module(PACKAGE)
    return {"attacks": sorted(m.name for m in pkgutil.iter_modules(package.__path__)), "defenses": []}
