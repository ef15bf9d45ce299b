"""Runners for torchattacks (Hoki Kim's library of PyTorch attacks), set from our parameters.

torchattacks assumes images in [0, 1]: a model with other bounds ``(lo, hi)`` is shown to it
through ``u -> lo + (hi - lo) u`` (eps and step sizes divided by ``hi - lo``), flat inputs
as one row of pixels, and its output is mapped back. The output is torchattacks' own, never
clipped, projected or judged: the harness verifies it. Its ports of AutoAttack's attacks get
the seed explicitly; the others draw from torch's global generator, seeded by
:class:`~robust.comparison.external.ExternalAttack`.

Example:
    >>> run = runner("pgd", {**robust.registry.ATTACKS.get("pgd").defaults, "step_size": 0.01}, "linf", 0.3, False)
    >>> x_adv = run(model, x, y)
"""

from __future__ import annotations

import contextlib
import inspect
import io
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import Any

import torch
from torch import nn

from robust.comparison.autoattack import square_queries
from robust.comparison.common import (LIBRARY_ERRORS, Runner, eval_mode, from_unit, kept_gradients, refusals,
                                      require, to_unit)
from robust.comparison.peer_tables import CLASSES
from robust.errors import RobustError
from robust.attack import num_classes
from robust.model import Classifier

NORMS = {"linf": "Linf", "l2": "L2"}


@dataclass(frozen=True)
class _Setting:
    """What an attack's constructor needs besides our parameters: eps on [0, 1] and the model's classes."""

    norm: str
    eps: float  # on [0, 1]; 0.0 for the attacks without a budget
    span: float
    classes: int
    seed: int


def _targets(p: dict[str, Any], s: _Setting) -> int:
    """torchattacks' ``n_classes`` for ``targets`` target classes: it attacks ``n_classes - 1`` of them."""
    return min(p["targets"], s.classes - 1) + 1


def _autoattack(p: dict[str, Any], s: _Setting) -> dict[str, Any]:
    return {"norm": NORMS[s.norm], "eps": s.eps, "seed": s.seed}


_ARGS: dict[str, Callable[[dict[str, Any], _Setting], dict[str, Any]]] = {
    "fgsm": lambda p, s: {"eps": s.eps},
    "pgd": lambda p, s: {"eps": s.eps, "alpha": p["step_size"] / s.span, "steps": p["steps"],
                         "random_start": p["random_start"]},
    "mi-fgsm": lambda p, s: {"eps": s.eps, "alpha": p["step_size"] / s.span, "steps": p["steps"], "decay": p["decay"]},
    "deepfool": lambda p, s: {"steps": p["steps"], "overshoot": p["overshoot"]},
    "cw": lambda p, s: {"c": p["initial_const"], "kappa": p["confidence"], "steps": p["steps"], "lr": p["lr"]},
    "apgd": lambda p, s: {**_autoattack(p, s), "steps": p["steps"], "n_restarts": p["restarts"], "loss": p["loss"],
                          "rho": p["rho"]},
    "apgd-t": lambda p, s: {**_autoattack(p, s), "steps": p["steps"], "n_restarts": p["restarts"], "rho": p["rho"],
                            "n_classes": _targets(p, s)},
    "fab": lambda p, s: {**_autoattack(p, s), "steps": p["steps"], "n_restarts": p["restarts"],
                         "alpha_max": p["alpha_max"], "eta": p["eta"], "beta": p["beta"], "n_classes": s.classes},
    "fab-t": lambda p, s: {**_autoattack(p, s), "steps": p["steps"], "n_restarts": p["restarts"],
                           "alpha_max": p["alpha_max"], "eta": p["eta"], "beta": p["beta"], "multi_targeted": True,
                           "n_classes": _targets(p, s)},
    "square": lambda p, s: {**_autoattack(p, s), "n_queries": square_queries(p["queries"], p["restarts"]),
                            "n_restarts": p["restarts"], "p_init": p["p_init"], "loss": p["loss"],
                            "resc_schedule": False},
    "standard": lambda p, s: {**_autoattack(p, s), "version": "standard", "n_classes": _targets(p, s)},
}


def _standard(aa: Any, p: dict[str, Any]) -> None:
    """Our steps, restarts and queries on the attacks inside torchattacks' AutoAttack (its own: 10, 1, 5000)."""
    apgd, apgd_t, fab, square = aa._autoattack.attacks
    apgd.steps = apgd_t.steps = fab.steps = p["steps"]  # APGD derives its checkpoints from steps at each run
    apgd.n_restarts = p["restarts"]
    square.n_queries = square_queries(p["queries"], 1)


def _build(ta: Any, attack: str, norm: str, p: dict[str, Any], f: nn.Module, s: _Setting,
           device: torch.device) -> Any:
    cls = getattr(ta, CLASSES["torchattacks"][attack][norm])
    with contextlib.redirect_stdout(io.StringIO()):  # it prints when the model has no parameters
        made = cls(f, **_ARGS[attack](p, s))
    made.set_device(device)
    if attack == "standard":
        _standard(made, p)
    return made


def runner(attack: str, p: dict[str, Any], norm: str, eps: float | None, targeted: bool) -> Runner:
    """A function ``(model, x, y) -> x_adv`` running torchattacks' ``attack`` with our parameters ``p``.

    Args:
        attack: fgsm, pgd, mi-fgsm, deepfool, cw, apgd, apgd-t, fab, fab-t, square or standard.
        p: every hyperparameter of our attack (defaults filled in, step sizes resolved), ``norm`` left out.
        norm: "linf" or "l2".
        eps: the budget in input space; every attack but deepfool and cw needs one (FAB included).
        targeted: ``y`` holds target classes (set_mode_targeted_by_label).

    Raises:
        RobustError: torchattacks is not installed, or eps is missing where it is needed.
    """
    ta = require("torchattacks")
    if eps is None and attack not in ("deepfool", "cw"):
        raise RobustError(f"torchattacks' {attack!r} needs eps")
    budget = float(eps or 0.0)

    def run(model: Classifier, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if len(x) == 0:
            return x
        xs, ys = x.detach().to(model.device), y.detach().to(model.device).long()
        u, f = to_unit(model, xs, images=True)
        with eval_mode(model), kept_gradients(model), refusals("torchattacks", attack, LIBRARY_ERRORS):
            classes = num_classes(model, xs)
            setting = _Setting(norm, budget / f.span, f.span, classes, torch.initial_seed())
            made = _build(ta, attack, norm, p, f, setting, model.device)
            if targeted:
                made.set_mode_targeted_by_label(quiet=True)
            out = made(u, ys)
        return from_unit(model, out, u, x)
    return run


def capabilities() -> dict[str, list[str]]:
    """The attack classes torchattacks exports (its wrappers left out).

    Raises:
        ImportError: torchattacks is not installed.
    """
    ta = import_module("torchattacks")
    base = ta.attack.Attack
    found = [name for name in getattr(ta, "__all__", dir(ta)) if inspect.isclass(obj := getattr(ta, name, None))
             and issubclass(obj, base) and obj.__module__.startswith("torchattacks.attacks.")]
    return {"attacks": sorted(found), "defenses": []}
