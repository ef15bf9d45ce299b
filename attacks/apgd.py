"""Auto-PGD and its targeted version, Linf and L2 (Croce and Hein 2020, arXiv:2003.01690).

APGD is PGD without a step size to tune: it starts with a step of ``2 * eps``, moves with
momentum, and at checkpoints (after 22% of the steps, then ever shorter intervals down to 6%)
halves the step of every point whose loss stalled, restarting it from its best point so far.
APGD-T ascends the targeted DLR loss towards each of the top ``targets`` other classes in
turn, on the points still robust; success is any misclassification.

Shapes: ``x`` (N, C, H, W) in the model's bounds, ``y`` (N,) labels (targets when
``targeted``). ``eps`` is in input space. A point leaves the batch at its first
adversarial iterate, as in PGD.

Example:
    >>> apgd = robust.create_attack("apgd", loss="dlr", steps=100)
    >>> result = apgd(model, x, y, eps=8 / 255)
    >>> robust.create_attack("apgd-t", targets=9)(model, x, y, eps=8 / 255).success.float().mean()
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch

from robust.attack import clip, num_classes, per_sample
from robust.gradient import NORM, RESTARTS, GradientAttack, Schedule
from robust.losses import LOSSES, AimedLossFn, LossFn, targeted_dlr
from robust.model import Classifier
from robust.params import Param

from .checkpoints import CheckpointStepper
from .screen import SCREEN, hopeless

STEPS = Param("steps", int, 100, "gradient steps per run (AutoAttack: 100)", low=1)
RHO = Param("rho", float, 0.75, "a checkpoint halves the step where the loss rose in at most this share of the steps "
            "since the last one", low=0, high=1)
class APGD(GradientAttack):
    """Auto-PGD: momentum, step-size checkpoints and restarts from the best point.

    Args (keyword hyperparameters):
        norm: "linf" or "l2".
        steps: gradient steps per run (default 100; each costs one forward and one backward pass).
        restarts: independent runs from random points on the sphere of radius eps; a point
            already fooled is not restarted (default 1).
        loss: "ce" (default, AutoAttack's APGD-CE), "dlr" (APGD-DLR) or "margin".
        rho: the checkpoint's threshold on the share of steps that raised the loss (0.75).
        screen: the restarts after the first leave out the points whose screen score (see
            :mod:`robust.attacks.screen`) lies below ``-screen`` (default None: every point
            still robust). Untargeted only.

    The run starts, as the paper's does, at a random point on the boundary of the ball
    (Linf: uniform noise scaled so its largest coordinate is eps; L2: a Gaussian direction of
    length eps). A point leaves the batch at its first adversarial iterate.
    """

    name = "apgd"
    parameters: ClassVar[tuple[Param, ...]] = (
        NORM, STEPS, RESTARTS, Param("loss", str, "ce", "the loss ascended (see robust.losses)", choices=tuple(LOSSES)),
        RHO, Param("screen", float, None, "restarts after the first leave out the points whose best DLR loss over a "
                   "20-step APGD-DLR screen stays below -screen; none: every point still robust", low=0, nullable=True))
    evaluates_last = True

    def narrow(self, model: Classifier, x: torch.Tensor, y: torch.Tensor, eps: float,
               targeted: bool) -> Callable[[torch.Tensor], torch.Tensor] | None:
        threshold = self.params.get("screen")
        if threshold is None or targeted:
            return None
        return lambda points: ~hopeless(model, x[points], y[points], eps, self.norm, threshold)

    def schedule(self, eps: float) -> Schedule:
        p = self.params
        return Schedule(p["steps"], 2.0 * eps, True, p["restarts"])

    def stepper(self, x: torch.Tensor, eps: float, schedule: Schedule, bounds: tuple[float, float]) -> CheckpointStepper:
        return CheckpointStepper(x, eps, self.norm, schedule.steps, float(self.params["rho"]), bounds)

    def start(self, x: torch.Tensor, eps: float, bounds: tuple[float, float], schedule: Schedule,
              generator: torch.Generator) -> torch.Tensor:
        if self.norm == "linf":
            noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) * 2 - 1
            size = noise.flatten(1).abs().amax(dim=1)
        else:
            noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            size = noise.flatten(1).norm(dim=1)
        return clip(x + eps * noise / per_sample(size.clamp_min(1e-12), x), bounds)


class APGDTargeted(APGD):
    """APGD-T: APGD on the targeted DLR loss towards each of the top other classes in turn.

    Args (keyword hyperparameters):
        norm, steps, restarts, rho: as for :class:`APGD` (restarts per target).
        targets: how many target classes, the top ones by logit at the clean point other than
            the label (default 9; never more than the model has other classes).

    Each target runs only on the points every earlier target left robust; success is any
    misclassification. With ``screen``, points that a 20-step APGD-DLR run leaves far from
    the boundary (see :func:`hopeless`) are not attacked. The loss is AutoAttack's targeted DLR,
    ``(z_t - z_y) / (z_(1) - (z_(3) + z_(4)) / 2)``; a model with fewer than 4 classes gets
    the targeted margin ``z_t - z_y`` instead. With ``targeted=True`` the call's ``y`` are the
    targets and this is APGD on the targeted logit margin towards them.
    """

    name = "apgd-t"
    parameters = (NORM, STEPS, RESTARTS, RHO, Param("targets", int, 9, "target classes, the top ones by logit at the "
                                                    "clean point other than the label", low=1), SCREEN)

    def loss(self) -> LossFn | AimedLossFn:
        return _aimed

    def run(self, model: Classifier, x: torch.Tensor, y: torch.Tensor, *, eps: float | None, targeted: bool,
            generator: torch.Generator) -> torch.Tensor:
        assert eps is not None
        plan = self.schedule(eps)
        x_adv = x.clone()
        todo = torch.arange(len(x), device=x.device)
        if not targeted:
            todo = todo[~hopeless(model, x, y, eps, self.norm, self.params["screen"])]
            if todo.numel() == 0:
                return x_adv
        if targeted:
            self.run_restarts(model, x, y, x_adv, todo, eps, plan, True, generator, loss=_towards)
            return x_adv
        order = _clean_logits(model, x).scatter(1, y[:, None], float("-inf")).argsort(dim=1, descending=True)
        for rank in range(min(int(self.params["targets"]), order.shape[1] - 1)):
            todo = self.run_restarts(model, x, y, x_adv, todo, eps, plan, False, generator, aim=order[:, rank])
            if todo.numel() == 0:
                break
        return x_adv


def _aimed(logits: torch.Tensor, y: torch.Tensor, aim: torch.Tensor) -> torch.Tensor:
    """Targeted DLR towards ``aim`` (the targeted margin below 4 classes)."""
    if logits.shape[1] >= 4:
        return targeted_dlr(logits, y, aim)
    return logits.gather(1, aim[:, None]).squeeze(1) - logits.gather(1, y[:, None]).squeeze(1)


def _towards(logits: torch.Tensor, y: torch.Tensor, targeted: bool) -> torch.Tensor:
    """Towards the given targets: the logit margin (the targeted DLR needs the true label, which such a call lacks)."""
    return LOSSES["margin"](logits, y, targeted)


@torch.no_grad()
def _clean_logits(model: Classifier, x: torch.Tensor) -> torch.Tensor:
    return model(x).float()
