"""Runners for IBM's Adversarial Robustness Toolbox (ART), set from our parameters.

ART works on NumPy arrays through its ``PyTorchClassifier``, which takes the model's bounds
(``clip_values``). Its output comes back on ``x``'s device and dtype, never projected or
judged here: the harness verifies it. ART draws from NumPy's and torch's global generators,
seeded by :class:`~robust.comparison.external.ExternalAttack`.

Example:
    >>> run = runner("pgd", {**robust.registry.ATTACKS.get("pgd").defaults, "step_size": 0.01}, "linf", 0.3, False)
    >>> x_adv = run(model, x, y)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from importlib import import_module
from typing import Any

import torch
from torch import nn

from robust.comparison.autoattack import square_queries
from robust.comparison.common import FIXED_EPS, Runner, eval_mode, kept_gradients, pick, refusals, require
from robust.comparison.tables import CLASSES
from robust.attack import num_classes
from robust.model import Classifier

_SAME = {"initial_const": "initial_const", "confidence": "confidence", "binary_search_steps": "binary_search_steps"}
_APGD_LOSS = {"ce": None, "dlr": "difference_logits_ratio"}  # None: the estimator's cross-entropy

# Constructor arguments besides the estimator, norm, eps, targeted, verbose and batch size; eps is the budget.
ARGS: dict[str, Callable[[dict[str, Any], float], dict[str, Any]]] = {
    "fgsm": lambda p, eps: {},
    "pgd": lambda p, eps: {"num_random_init": p["restarts"] if p["random_start"] else 0,
                           **pick(p, eps_step="step_size", max_iter="steps")},
    "deepfool": lambda p, eps: pick(p, max_iter="steps", epsilon="overshoot", nb_grads="candidates"),
    "cw": lambda p, eps: pick(p, max_iter="steps", learning_rate="lr", **_SAME),
    "boundary": lambda p, eps: {"max_iter": max(1, p["max_queries"] // 40), "step_adapt": 1.0 / p["step_adaptation"],
                                **pick(p, delta="spherical_step", epsilon="source_step", init_size="init_draws")},
    "apgd": lambda p, eps: {"eps_step": 2 * eps, "max_iter": p["steps"], "nb_random_init": p["restarts"],
                            "loss_type": _APGD_LOSS[p["loss"]]},
    "square": lambda p, eps: {"max_iter": square_queries(p["queries"], p["restarts"]), "p_init": p["p_init"],
                              "nb_restarts": p["restarts"]},
    "mi-fgsm": lambda p, eps: pick(p, eps_step="step_size", max_iter="steps", decay="decay"),
}


class _CastInput(nn.Module):
    """Casts ART's inputs to the data's dtype: under NumPy 2 its BoundaryAttack builds float64 candidates."""

    def __init__(self, model: Classifier, dtype: torch.dtype) -> None:
        super().__init__()
        self.model, self.dtype = model, dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.to(self.dtype))


def runner(attack: str, p: dict[str, Any], norm: str, eps: float | None, targeted: bool) -> Runner:
    """A function ``(model, x, y) -> x_adv`` running ART's ``attack`` with our parameters ``p``.

    Raises:
        RobustError: ART is not installed.
    """
    require("art")
    from art.attacks import evasion
    from art.estimators.classification import PyTorchClassifier

    cls = getattr(evasion, CLASSES["art"][attack][norm])
    takes = inspect.signature(cls.__init__).parameters
    args = ARGS[attack](p, float(eps or 0.0))
    if attack in FIXED_EPS:
        args.update(norm=float("inf") if norm == "linf" else 2, eps=eps)
    args.update({name: value for name, value in (("verbose", False), ("targeted", targeted)) if name in takes})
    start = p.get("starting_points")

    def run(model: Classifier, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with eval_mode(model), kept_gradients(model), refusals("art", attack):
            classes = num_classes(model, x.detach().to(model.device))
            estimator = PyTorchClassifier(
                model=_CastInput(model, x.dtype), loss=nn.CrossEntropyLoss(), input_shape=tuple(x.shape[1:]),
                nb_classes=classes, clip_values=model.bounds, device_type="gpu" if model.device.type == "cuda" else "cpu")
            art_attack = cls(estimator, batch_size=len(x), **args)
            kw = {} if start is None else {"x_adv_init": start.detach().cpu().float().numpy()}
            adv = art_attack.generate(x.detach().cpu().float().numpy(), y.detach().cpu().numpy(), **kw)
        return torch.from_numpy(adv).to(device=x.device, dtype=x.dtype)
    return run


def class_names(module: Any, base: type) -> list[str]:
    """The public, concrete subclasses of ``base`` that ``module`` exports (aliases included), sorted."""
    return sorted(name for name, obj in vars(module).items() if not name.startswith("_") and isinstance(obj, type)
                  and issubclass(obj, base) and obj is not base and not inspect.isabstract(obj))


def capabilities() -> dict[str, list[str]]:
    """The evasion attacks of ``art.attacks.evasion`` and the preprocessors of ``art.defences.preprocessor``.

    Raises:
        ImportError: ART is not installed.
    """
    import_module("art")  # the top-level import first: a blocked package counts as missing
    from art.attacks import evasion
    from art.attacks.attack import EvasionAttack
    from art.defences import preprocessor
    from art.defences.preprocessor.preprocessor import Preprocessor

    return {"attacks": class_names(evasion, EvasionAttack), "defenses": class_names(preprocessor, Preprocessor)}
