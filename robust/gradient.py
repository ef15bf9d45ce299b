"""The gradient-attack base: one loop of loss gradient, step, projection and early exit.

FGSM, PGD, the checks' loss trace and adversarial training are configurations of
:func:`descend` (Foolbox 3's gradient-descent base is the model): a start point, a number
of steps, a loss from :mod:`robust.losses` and a :class:`Stepper` that turns a gradient
into the next iterate. The loop never runs a per-sample Python loop or leaves the device:

- with ``early_exit``, a point whose iterate is adversarial (confirmed by an exact forward
  pass where gradient passes are approximate) keeps that iterate and leaves the batch, so
  later steps get cheaper (on a GPU the batch shrinks once at most half its rows are left:
  each new batch size costs new kernel plans); the model is never called on an empty batch;
- with ``trace``, the best loss so far of every point is recorded after every step, plus
  one evaluation of the last iterate (``steps + 1`` rows).

:class:`GradientAttack` adds random starts and restarts over the points not yet fooled;
an attack with another step rule (APGD's momentum and step-size checkpoints, say) supplies
its own :class:`Stepper` and keeps the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable
from typing import ClassVar, Protocol, cast

import torch

from robust.attack import Attack, clip, confirm, is_adversarial, per_sample, project
from robust.losses import LOSSES, AimedLossFn, LossFn
from robust.model import Classifier
from robust.params import NORMS, Param

NORM = Param("norm", str, "linf", "linf: signed-gradient steps; l2: normalized-gradient steps", choices=NORMS)
LOSS = Param("loss", str, "ce", "the loss ascended (see robust.losses)", choices=tuple(LOSSES))
STEPS = Param("steps", int, 40, "gradient steps per restart", low=1)
STEP_SIZE = Param("step_size", float, None, "absolute step in input space; none: 2.5 * eps / steps",
                  low=0, open_low=True, nullable=True)
RANDOM_START = Param("random_start", bool, True, "start at a random point of the eps ball (L2: uniform radius)")
RESTARTS = Param("restarts", int, 1, "independent runs; a point already fooled is not restarted", low=1)


@dataclass(frozen=True)
class Schedule:
    """How many steps of what size, from where, how many times."""

    steps: int
    step_size: float
    random_start: bool
    restarts: int = 1


class Stepper(Protocol):
    """Turns the gradient at the current iterates into the next ones; holds per-row state."""

    def step(self, t: int, xa: torch.Tensor, grad: torch.Tensor, loss: torch.Tensor) -> torch.Tensor:
        """The next iterates for step ``t`` (rows as in ``xa``), inside the ball and the bounds."""

    def keep(self, rows: torch.Tensor) -> None:
        """Keep only the rows where the bool mask ``rows`` is True (the others left the batch)."""

    def result(self, xa: torch.Tensor) -> torch.Tensor:
        """What the points still in the batch return at the end (their last iterate, or a best one)."""


def steepest_direction(grad: torch.Tensor, norm: str) -> torch.Tensor:
    """Steepest-ascent direction of unit size in ``norm``: the sign (Linf) or the normalized gradient (L2)."""
    if norm == "linf":
        return grad.sign()
    return grad / per_sample(grad.flatten(1).norm(dim=1).clamp_min(1e-12), grad)


class SteepestAscent:
    """A fixed-size steepest-ascent step, projected onto the eps ball and clipped to the bounds."""

    def __init__(self, x: torch.Tensor, eps: float, norm: str, step_size: float, bounds: tuple[float, float]) -> None:
        self.x, self.eps, self.norm, self.step_size, self.bounds = x, eps, norm, step_size, bounds

    def step(self, t: int, xa: torch.Tensor, grad: torch.Tensor, loss: torch.Tensor) -> torch.Tensor:
        moved = xa + self.step_size * steepest_direction(grad, self.norm)
        return clip(project(moved, self.x, self.eps, self.norm), self.bounds)

    def keep(self, rows: torch.Tensor) -> None:
        self.x = self.x[rows]

    def result(self, xa: torch.Tensor) -> torch.Tensor:
        return xa


def random_start(x: torch.Tensor, eps: float, norm: str, bounds: tuple[float, float],
                 generator: torch.Generator | None) -> torch.Tensor:
    """A random point of the eps ball around ``x``, clipped to the bounds.

    Linf: uniform per coordinate. L2: a direction uniform on the sphere and a radius uniform in
    ``[0, eps]`` (torchattacks' draw). Uniform in volume (Foolbox, ART) nearly every start would
    lie on the sphere in d dimensions (radius below ``0.99 * eps`` with probability ``0.99 ** d``),
    and 20-step PGD from there left 1.7 to 2.0 points more robust accuracy on the zoo's MNIST
    CNNs (3 seeds). ``generator`` None draws from torch's global generator (training seeds it).
    """
    device, dtype = x.device, x.dtype
    if norm == "linf":
        noise = (torch.rand(x.shape, generator=generator, device=device, dtype=dtype) * 2 - 1) * eps
    else:
        direction = torch.randn(x.shape, generator=generator, device=device, dtype=dtype)
        direction = direction / per_sample(direction.flatten(1).norm(dim=1).clamp_min(1e-12), x)
        radius = torch.rand(len(x), generator=generator, device=device, dtype=dtype)
        noise = direction * per_sample(eps * radius, x)
    return clip(x + noise, bounds)


@dataclass
class Descent:
    """What one run of :func:`descend` found.

    Attributes:
        x_adv: per point, its first adversarial iterate (with ``early_exit``), else what the
            stepper returns at the end (the last iterate for a fixed step).
        fooled: per point, whether an iterate was found adversarial during the run.
        trace: (steps + 1, N) best loss so far per step and point, with ``trace=True``.
        flat: (N,) per point, at how many of its evaluated iterates the input gradient was all
            zero, with ``trace=True``.
    """

    x_adv: torch.Tensor
    fooled: torch.Tensor
    trace: torch.Tensor | None = None
    flat: torch.Tensor | None = None


def loss_and_gradient(model: Classifier, xa: torch.Tensor, objective: Callable[[torch.Tensor], torch.Tensor]
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits, per-sample ``objective(logits)`` and its input gradient at ``xa`` (one forward, one backward)."""
    xa = xa.detach().requires_grad_(True)
    logits = model(xa)
    value = objective(logits)
    grad, = torch.autograd.grad(value.sum(), xa)
    return logits.detach(), value.detach(), grad


def descend(model: Classifier, y: torch.Tensor, start: torch.Tensor, stepper: Stepper, *, steps: int,
            loss: LossFn | AimedLossFn, targeted: bool = False, aim: torch.Tensor | None = None,
            early_exit: bool = True, trace: bool = False, last: bool = False) -> Descent:
    """Ascend ``loss`` from ``start`` for ``steps`` steps of ``stepper``; see the module docstring.

    Args:
        model: the classifier, in whatever mode the caller set (attacks: eval; training: train).
        y: labels (targets when ``targeted``), one per row of ``start``.
        start: the first iterates (N, ...), inside the ball and the bounds; N >= 1.
        stepper: the step rule, holding the clean points its projection needs.
        steps: gradient steps; each costs one forward and one backward pass per point in the batch.
        loss: a per-sample loss to ascend: ``loss(logits, y, targeted)``, or with ``aim``
            ``loss(logits, y, aim)`` (:func:`~robust.losses.targeted_dlr`).
        targeted: ``y`` holds targets: success is predicting them.
        aim: per row, a class the loss pulls towards while success is still judged against
            ``y`` (APGD-T: any misclassification counts).
        early_exit: a point leaves the batch at its first adversarial iterate.
        trace: record the best loss so far after every step (and at the last iterate).
        last: also evaluate the last iterate (one more forward and backward pass), so that
            early exit sees it; ``trace`` implies it.
    """
    n = len(start)
    idx = torch.arange(n, device=start.device)
    alive = torch.ones(n, dtype=torch.bool, device=start.device)  # rows of the batch still attacked
    xa, x_adv = start.detach(), start.detach().clone()
    fooled = torch.zeros(n, dtype=torch.bool, device=start.device)
    best = torch.full((n,), float("-inf"), device=start.device) if trace else None
    flat = torch.zeros(n, dtype=torch.long, device=start.device)
    rows: list[torch.Tensor] = []
    for t in range(steps + (1 if trace or last else 0)):
        logits, value, grad = loss_and_gradient(model, xa, _objective(loss, y[idx], targeted,
                                                                       None if aim is None else aim[idx]))
        if best is not None:
            live = idx[alive]
            best[live] = torch.maximum(best[live], value[alive])
            rows.append(best.clone())
            flat[live] += (grad[alive].flatten(1).abs().amax(dim=1) == 0).long()
        if early_exit:
            done = _fooled(model, xa, logits, y[idx], targeted) & alive
            if bool(done.any()):
                x_adv[idx[done]], fooled[idx[done]] = xa[done], True
                alive = alive & ~done
                if _compact(alive):
                    keep = alive
                    idx, xa, grad, value, alive = idx[keep], xa[keep], grad[keep], value[keep], alive[keep]
                    stepper.keep(keep)
                    if idx.numel() == 0:
                        break
        if t == steps:
            break
        xa = stepper.step(t, xa, grad, value).detach()
    if idx.numel():
        x_adv[idx[alive]] = stepper.result(xa).detach()[alive]
    if best is not None:  # points that left early keep their best loss on the remaining rows
        rows += [best.clone() for _ in range(steps + 1 - len(rows))]
    return Descent(x_adv, fooled, torch.stack(rows) if rows else None, flat if trace else None)


def _compact(alive: torch.Tensor) -> bool:
    """Whether to drop the rows that left from the batch now. On the CPU at once, so later steps
    get cheaper. On a GPU only once at most half the rows are left: every new batch size costs
    new kernel plans, and a few idle rows cost less than that, so at most log2(N) sizes occur."""
    if alive.device.type != "cuda":
        return True
    return 2 * int(alive.sum()) <= len(alive)


def _objective(loss: LossFn | AimedLossFn, y: torch.Tensor, targeted: bool,
               aim: torch.Tensor | None) -> Callable[[torch.Tensor], torch.Tensor]:
    if aim is None:
        return lambda logits: cast(LossFn, loss)(logits, y, targeted)
    return lambda logits: cast(AimedLossFn, loss)(logits, y, aim)


def _fooled(model: Classifier, xa: torch.Tensor, logits: torch.Tensor, y: torch.Tensor, targeted: bool) -> torch.Tensor:
    """Which iterates are adversarial, re-checked exactly where the gradient pass was approximate."""
    flagged = is_adversarial(logits, y, targeted)
    return confirm(model, xa, flagged, lambda rows, exact: is_adversarial(exact, y[rows], targeted))


class GradientAttack(Attack):
    """Iterated gradient ascent of a loss with projection, random starts, restarts and early exit.

    Madry et al. 2018 ("Towards Deep Learning Models Resistant to Adversarial Attacks",
    arXiv:1706.06083) with a fixed step; subclasses configure it (FGSM is one step of size
    eps, PGD uses these parameters as they are) or give another :meth:`stepper`.

    Args (keyword hyperparameters): ``norm``, ``steps``, ``step_size``, ``random_start``,
    ``restarts``, ``loss``; see ``parameters``.
    """

    name: ClassVar[str] = "gradient"
    evaluates_last: ClassVar[bool] = False  # evaluate the last iterate too (see descend's ``last``)
    parameters: ClassVar[tuple[Param, ...]] = (NORM, STEPS, STEP_SIZE, RANDOM_START, RESTARTS, LOSS)

    def schedule(self, eps: float) -> Schedule:
        """Steps, step size, random start and restarts for this eps."""
        p = self.params
        step_size = p["step_size"] if p["step_size"] is not None else 2.5 * eps / p["steps"]
        return Schedule(p["steps"], float(step_size), bool(p["random_start"]), p["restarts"])

    def stepper(self, x: torch.Tensor, eps: float, schedule: Schedule, bounds: tuple[float, float]) -> Stepper:
        """The step rule for the clean points ``x`` (override for momentum, schedules, ...)."""
        return SteepestAscent(x, eps, self.norm, schedule.step_size, bounds)

    def start(self, x: torch.Tensor, eps: float, bounds: tuple[float, float], schedule: Schedule,
              generator: torch.Generator) -> torch.Tensor:
        """Where a restart begins: a random point of the ball with ``random_start`` (:func:`random_start`), else ``x``."""
        return random_start(x, eps, self.norm, bounds, generator) if schedule.random_start else x

    def run(self, model: Classifier, x: torch.Tensor, y: torch.Tensor, *, eps: float | None, targeted: bool,
            generator: torch.Generator) -> torch.Tensor:
        assert eps is not None
        plan = self.schedule(eps)
        x_adv = x.clone()
        self.run_restarts(model, x, y, x_adv, torch.arange(len(x), device=x.device), eps, plan, targeted, generator,
                          narrow=self.narrow(model, x, y, eps, targeted))
        return x_adv

    def narrow(self, model: Classifier, x: torch.Tensor, y: torch.Tensor, eps: float,
               targeted: bool) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """Which of the points still robust after the first run the later restarts attack (None: all of them)."""
        return None

    def run_restarts(self, model: Classifier, x: torch.Tensor, y: torch.Tensor, x_adv: torch.Tensor, todo: torch.Tensor,
                     eps: float, plan: Schedule, targeted: bool, generator: torch.Generator,
                     aim: torch.Tensor | None = None, loss: LossFn | AimedLossFn | None = None,
                     narrow: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        """``plan.restarts`` runs over the points ``todo``, each on those the earlier ones left robust.

        Writes what each run found into ``x_adv`` and returns the points still robust after the
        last. ``aim`` (per point of ``x``) and ``loss`` (default :meth:`loss`) go to :func:`descend`;
        ``narrow(points)`` (a bool mask over those indices) keeps some of the points still robust
        after the first run for the later restarts.
        """
        for restart in range(plan.restarts):
            points = x[todo]
            found = descend(model, y[todo], self.start(points, eps, model.bounds, plan, generator),
                            self.stepper(points, eps, plan, model.bounds), steps=plan.steps, loss=loss or self.loss(),
                            targeted=targeted, aim=None if aim is None else aim[todo], last=self.evaluates_last)
            x_adv[todo] = found.x_adv
            if restart == plan.restarts - 1 and aim is None:
                break
            todo = self._still_robust(model, todo, found, y, targeted)
            if restart == 0 and narrow is not None and todo.numel():
                todo = todo[narrow(todo)]
            if todo.numel() == 0:
                break
        return todo

    def loss(self) -> LossFn | AimedLossFn:
        """The loss ascended (``loss`` from :mod:`robust.losses`)."""
        return LOSSES[self.params["loss"]]

    @staticmethod
    @torch.no_grad()
    def _still_robust(model: Classifier, todo: torch.Tensor, found: Descent, y: torch.Tensor,
                      targeted: bool) -> torch.Tensor:
        """The points of ``todo`` whose run ended robust: neither an iterate nor the last one fooled the model."""
        left = ~found.fooled
        if not bool(left.any()):
            return todo[left]
        last = is_adversarial(model(found.x_adv[left]), y[todo[left]], targeted)
        return todo[left][~last]

