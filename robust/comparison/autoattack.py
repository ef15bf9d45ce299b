"""Runners for the official AutoAttack code (the ``pyautoattack`` package), set from our parameters.

AutoAttack assumes inputs in [0, 1]. A model with other bounds ``(lo, hi)`` is shown to it
through ``u -> lo + (hi - lo) u``, with eps divided by ``hi - lo`` (both norms), and its
output is mapped back; bounds (0, 1) pass unchanged. The output is AutoAttack's own, never
clipped, projected or judged: the harness verifies it. Its logger ("auto-attack") is
silenced and its ``verbose`` flags are off.

Example:
    >>> run = runner("apgd", {**robust.registry.ATTACKS.get("apgd").defaults, "steps": 20}, "linf", 0.3, False)
    >>> x_adv = run(model, x, y)
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable, Iterator
from importlib import import_module
from typing import Any, get_args, get_type_hints

import torch
from torch import nn

from robust.comparison.common import (FrameworkRefused, Runner, eval_mode, from_unit, kept_gradients, refusals,
                                      require, to_unit)
from robust.errors import RobustError
from robust.attack import num_classes
from robust.model import Classifier

NORMS = {"linf": "Linf", "l2": "L2"}
APGD_LOSSES = ("ce", "dlr")
STANDARD = {"steps": 100, "targets": 9, "queries": 5000, "restarts": 1}  # what AutoAttack's standard version sets
LOGGER = "auto-attack"
Perturb = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """AutoAttack's logger off; the trace function its dynamic-defense check replaces put back."""
    log, trace = logging.getLogger(LOGGER), sys.gettrace()
    disabled, log.disabled = log.disabled, True
    try:
        yield
    finally:
        log.disabled = disabled
        sys.settrace(trace)


def _apgd(f: nn.Module, p: dict[str, Any], norm: str, eps: float, seed: int, device: torch.device,
          classes: int) -> Perturb:
    from pyautoattack.autopgd_base import APGDAttack

    if p["loss"] == "dlr" and classes < 3:
        raise FrameworkRefused(f"autoattack's 'apgd' needs 3 classes for the DLR loss, the model has {classes}")
    return APGDAttack(f, n_iter=p["steps"], norm=norm, n_restarts=p["restarts"], eps=eps, seed=seed, loss=p["loss"],
                      rho=p["rho"], device=device, verbose=False, logger=logging.getLogger(LOGGER)).perturb


def _apgd_targeted(f: nn.Module, p: dict[str, Any], norm: str, eps: float, seed: int, device: torch.device,
                   classes: int) -> Perturb:
    from pyautoattack.autopgd_base import APGDAttack_targeted

    if classes < 4:
        raise FrameworkRefused(f"autoattack's 'apgd-t' needs 4 classes for the targeted DLR loss, the model has {classes}")
    attack = APGDAttack_targeted(f, n_iter=p["steps"], norm=norm, n_restarts=p["restarts"], eps=eps, seed=seed,
                                 rho=p["rho"], n_target_classes=min(p["targets"], classes - 1), device=device,
                                 verbose=False, logger=logging.getLogger(LOGGER))
    return lambda u, y: attack.perturb(u, y)


def _fab(targeted: bool) -> Callable[..., Perturb]:
    def build(f: nn.Module, p: dict[str, Any], norm: str, eps: float, seed: int, device: torch.device,
              classes: int) -> Perturb:
        from pyautoattack.fab_pt import FABAttack_PT

        targets = min(p.get("targets", 9), classes - 1)
        attack = FABAttack_PT(f, norm=norm, n_restarts=p["restarts"], n_iter=p["steps"], eps=eps,
                              alpha_max=p["alpha_max"], eta=p["eta"], beta=p["beta"], seed=seed, device=device,
                              n_target_classes=targets, verbose=False)
        attack.targeted = targeted
        return attack.perturb
    return build


def square_queries(queries: int, restarts: int) -> int:
    """AutoAttack's proposals per restart for our budget: one query checks x, each restart's start costs one."""
    return max(0, (queries - 1) // restarts - 1)


def _square(targeted: bool) -> Callable[..., Perturb]:
    def build(f: nn.Module, p: dict[str, Any], norm: str, eps: float, seed: int, device: torch.device,
              classes: int) -> Perturb:
        from pyautoattack.square import SquareAttack

        return SquareAttack(f, p_init=p["p_init"], n_queries=square_queries(p["queries"], p["restarts"]), eps=eps,
                            norm=norm, n_restarts=p["restarts"], seed=seed, device=device, resc_schedule=False,
                            targeted=targeted, loss=p["loss"], verbose=False).perturb
    return build


def _standard(f: nn.Module, p: dict[str, Any], norm: str, eps: float, seed: int, device: torch.device,
              classes: int) -> Perturb:
    from pyautoattack import AutoAttack
    from pyautoattack.autopgd_base import APGDAttack, APGDAttack_targeted

    if classes < 4:
        raise FrameworkRefused(f"autoattack's 'standard' needs 4 classes (APGD-T's targeted DLR), the model has {classes}")
    aa = AutoAttack(f, norm=norm, eps=eps, version="standard", device=device, seed=seed)
    aa.verbose = False
    steps, targets = p["steps"], min(p["targets"], classes - 1)
    if steps != STANDARD["steps"]:  # APGD derives its checkpoints from n_iter when built: build it again
        common = {"n_iter": steps, "norm": norm, "n_restarts": 1, "eps": eps, "seed": seed, "eot_iter": 1, "rho": 0.75,
                  "device": device, "verbose": False, "logger": aa.logger}
        aa.apgd = APGDAttack(f, **common)
        aa.apgd_targeted = APGDAttack_targeted(f, **common)
    aa.fab.n_iter = steps
    aa.apgd.n_restarts = p["restarts"]
    aa.apgd_targeted.n_target_classes = aa.fab.n_target_classes = targets
    aa.square.n_queries = square_queries(p["queries"], 1)
    return lambda u, y: aa.run_standard_evaluation(u, y, batch_size=len(u))[0]


_BUILD: dict[str, Callable[..., Perturb]] = {
    "apgd": _apgd, "apgd-t": _apgd_targeted, "fab": _fab(False), "fab-t": _fab(True), "standard": _standard}


def runner(attack: str, p: dict[str, Any], norm: str, eps: float | None, targeted: bool) -> Runner:
    """A function ``(model, x, y) -> x_adv`` running AutoAttack's ``attack`` with our parameters ``p``.

    Args:
        attack: apgd, apgd-t, fab, fab-t, square or standard.
        p: every hyperparameter of our attack (defaults filled in), ``norm`` left out.
        norm: "linf" or "l2".
        eps: the budget in input space (every AutoAttack attack needs one, FAB included).
        targeted: ``y`` holds target classes (Square only: the others are untargeted).

    The seed of each run is torch's global seed at the call (set by
    :class:`~robust.comparison.external.ExternalAttack`), passed to AutoAttack explicitly.

    Raises:
        RobustError: pyautoattack is not installed, eps is missing, or a value it does not offer
            (APGD's loss must be ce or dlr).
    """
    require("autoattack")
    if eps is None:
        raise RobustError(f"autoattack's {attack!r} needs eps")
    if attack == "apgd" and p["loss"] not in APGD_LOSSES:
        raise RobustError(f"autoattack's 'apgd' has no loss {p['loss']!r}; it offers {', '.join(APGD_LOSSES)}")
    build = _square(targeted) if attack == "square" else _BUILD[attack]
    budget = float(eps)

    def run(model: Classifier, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if len(x) == 0:
            return x
        xs, ys = x.detach().to(model.device), y.detach().to(model.device).long()
        u, f = to_unit(model, xs, images=True)  # flat inputs as one row of pixels (Square needs images)
        with eval_mode(model), kept_gradients(model), refusals("autoattack", attack), _quiet():
            classes = num_classes(model, xs)
            perturb = build(f, p, NORMS[norm], budget / f.span, torch.initial_seed(), model.device, classes)
            out = perturb(u, ys).detach()
        return from_unit(model, out, u, x)  # coordinates AutoAttack left alone stay x's
    return run


def capabilities() -> dict[str, list[str]]:
    """The attacks AutoAttack's class runs and its versions, read from pyautoattack.

    Raises:
        ImportError: pyautoattack is not installed.
    """
    import_module("pyautoattack")
    from pyautoattack.autoattack import AttackName, AutoAttack

    versions = get_args(get_type_hints(AutoAttack.__init__)["version"])
    return {"attacks": sorted(get_args(AttackName)), "defenses": [], "versions": sorted(versions)}
