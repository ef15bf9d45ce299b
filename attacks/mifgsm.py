"""Momentum iterative fast gradient sign method, Linf and L2 (Dong et al. 2018, CVPR, arXiv:1710.06081).

Iterated FGSM whose steps follow an accumulated gradient: each new gradient is divided by
its L1 norm and added to the momentum, which decays by ``decay`` (the paper's mu) per step.
The step is the sign of the momentum (Linf) or the momentum scaled to unit L2 norm (L2).
With ``decay=0`` it is the basic iterative method (PGD without a random start).

Shapes: ``x`` (N, C, H, W) in the model's bounds, ``y`` (N,) labels (targets when
``targeted``). ``eps`` and ``step_size`` are in input space.

Example:
    >>> mifgsm = robust.create_attack("mi-fgsm", steps=10, decay=1.0)
    >>> result = mifgsm(model, x, y, eps=0.3)
    >>> result.success.float().mean()
"""

from __future__ import annotations

import torch

from robust.attack import clip, per_sample, project
from robust.gradient import LOSS, NORM, GradientAttack, Schedule, steepest_direction
from robust.params import Param


class MomentumStepper:
    """The gradient base's stepper with MI-FGSM's momentum: ``g <- decay * g + grad / ||grad||_1``."""

    def __init__(self, x: torch.Tensor, eps: float, norm: str, step_size: float, decay: float,
                 bounds: tuple[float, float]) -> None:
        self.x, self.eps, self.norm, self.step_size, self.decay, self.bounds = x, eps, norm, step_size, decay, bounds
        self.momentum = torch.zeros_like(x)

    def step(self, t: int, xa: torch.Tensor, grad: torch.Tensor, loss: torch.Tensor) -> torch.Tensor:
        l1 = grad.flatten(1).abs().sum(dim=1).clamp_min(1e-12)
        self.momentum = self.decay * self.momentum + grad / per_sample(l1, grad)
        moved = xa + self.step_size * steepest_direction(self.momentum, self.norm)
        return clip(project(moved, self.x, self.eps, self.norm), self.bounds)

    def keep(self, rows: torch.Tensor) -> None:
        self.x, self.momentum = self.x[rows], self.momentum[rows]

    def result(self, xa: torch.Tensor) -> torch.Tensor:
        return xa


class MIFGSM(GradientAttack):
    """MI-FGSM: the gradient base with a momentum stepper, no random start and one run.

    Dong, Liao, Pang, Su, Zhu, Hu and Li, "Boosting Adversarial Attacks with Momentum",
    CVPR 2018 (arXiv:1710.06081).

    Args (keyword hyperparameters):
        norm: "linf" (steps along the momentum's sign) or "l2" (along the momentum scaled to
            unit L2 norm).
        steps: gradient steps (default 10).
        step_size: absolute step in input space (default eps / steps, the paper's choice).
        decay: the momentum's decay factor mu (default 1.0); 0 gives the basic iterative method.
        loss: "ce" (cross-entropy, the paper's), "margin" or "dlr".

    As in PGD, a sample leaves the batch at its first adversarial iterate, which is kept.
    """

    name = "mi-fgsm"
    parameters = (
        NORM,
        Param("steps", int, 10, "gradient steps", low=1),
        Param("step_size", float, None, "absolute step in input space; none: eps / steps", low=0, open_low=True,
              nullable=True),
        Param("decay", float, 1.0, "momentum decay factor mu: momentum = decay * momentum + grad / ||grad||_1", low=0),
        LOSS,
    )

    def schedule(self, eps: float) -> Schedule:
        p = self.params
        step_size = p["step_size"] if p["step_size"] is not None else eps / p["steps"]
        return Schedule(p["steps"], float(step_size), random_start=False)

    def stepper(self, x: torch.Tensor, eps: float, schedule: Schedule, bounds: tuple[float, float]) -> MomentumStepper:
        return MomentumStepper(x, eps, self.norm, schedule.step_size, float(self.params["decay"]), bounds)
