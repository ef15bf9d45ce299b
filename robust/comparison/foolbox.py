"""Runners for Foolbox 3, set from our parameters.

Foolbox takes the model's bounds itself. The fixed-budget attacks return Foolbox's
``clipped`` output (what Foolbox users get), the minimization attacks its raw one; neither
is projected or judged here: the harness verifies it. One exception: Foolbox's CW returns an
all-zero image where it failed; such samples come back equal to ``x``.

Example:
    >>> run = runner("pgd", {**robust.registry.ATTACKS.get("pgd").defaults, "step_size": 0.01}, "linf", 0.3, False)
    >>> x_adv = run(model, x, y)
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any

import torch

from robust.comparison.art import class_names
from robust.comparison.common import FIXED_EPS, Runner, eval_mode, kept_gradients, pick, refusals, require
from robust.comparison.tables import CLASSES
from robust.model import Classifier

_SAME = {"initial_const": "initial_const", "confidence": "confidence", "binary_search_steps": "binary_search_steps"}


def _boundary_steps(p: dict[str, Any]) -> int:
    """The most steps s whose s + s // 10 queries (a spherical check every 10th step) fit after the start."""
    room = p["max_queries"] - p["init_steps"] - 4
    return max(1, 10 * (room // 11) + min(9, room % 11))


ARGS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {  # boundary's init attack is added by the runner
    "fgsm": lambda p: {},
    "pgd": lambda p: pick(p, steps="steps", abs_stepsize="step_size", random_start="random_start"),
    "deepfool": lambda p: pick(p, steps="steps", candidates="candidates", overshoot="overshoot"),
    "cw": lambda p: pick(p, steps="steps", stepsize="lr", abort_early="abort_early", **_SAME),
    "boundary": lambda p: {"steps": _boundary_steps(p), **pick(
        p, spherical_step="spherical_step", source_step="source_step", step_adaptation="step_adaptation")},
    "ddn": lambda p: pick(p, steps="steps", gamma="gamma", init_epsilon="init_norm"),
    "fmn": lambda p: {**pick(p, steps="steps", min_stepsize="alpha_final", gamma="gamma_init",
                             binary_search_steps="binary_search_steps"),
                      "max_stepsize": 1.0 if p["alpha_init"] is None else p["alpha_init"]},
    "mi-fgsm": lambda p: pick(p, steps="steps", abs_stepsize="step_size", momentum="decay"),
}


def runner(attack: str, p: dict[str, Any], norm: str, eps: float | None, targeted: bool) -> Runner:
    """A function ``(model, x, y) -> x_adv`` running Foolbox's ``attack`` with our parameters ``p``.

    Raises:
        RobustError: Foolbox is not installed, or refuses a value.
    """
    fb = require("foolbox")
    kwargs = ARGS[attack](p)
    if attack == "boundary":
        kwargs["init_attack"] = fb.attacks.LinearSearchBlendedUniformNoiseAttack(directions=p["init_draws"],
                                                                                 steps=p["init_steps"])
    with refusals("foolbox", attack):
        fb_attack = getattr(fb.attacks, CLASSES["foolbox"][attack][norm])(**kwargs)
    start = p.get("starting_points")

    def run(model: Classifier, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        xs, ys = x.detach().to(model.device), y.detach().to(model.device)
        kw = {} if start is None else {"starting_points": start.detach().to(model.device, xs.dtype)}
        with eval_mode(model), kept_gradients(model), refusals("foolbox", attack, (ValueError, AssertionError)):
            fmodel = fb.PyTorchModel(model, bounds=model.bounds, device=model.device)
            criterion = fb.criteria.TargetedMisclassification(ys) if targeted else ys
            raw, clipped, _ = fb_attack(fmodel, xs, criterion, epsilons=eps, **kw)
        out = clipped if attack in FIXED_EPS else raw
        if attack == "cw":  # Foolbox's CW returns an all-zero image where it found nothing: give back x there
            failed = (raw.flatten(1) == 0).all(dim=1).view(-1, *([1] * (xs.ndim - 1)))
            out = torch.where(failed, xs, out)
        return out.detach().to(device=x.device, dtype=x.dtype)
    return run


def capabilities() -> dict[str, list[str]]:
    """The public attack classes of ``foolbox.attacks`` (aliases included).

    Raises:
        ImportError: Foolbox is not installed.
    """
    fb = import_module("foolbox")
    return {"attacks": class_names(fb.attacks, fb.attacks.base.Attack), "defenses": []}
