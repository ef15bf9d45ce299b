"""Decoupled Direction and Norm, L2 (Rony et al. 2019, CVPR, arXiv:1811.09600).

A minimization attack. Every sample keeps a radius: at each step the perturbation takes a
normalized gradient step, the radius shrinks by a factor ``1 - gamma`` where the current
point is adversarial and grows by ``1 + gamma`` where it is not, and the perturbation is
rescaled to the new radius. The direction and the size are thus optimized separately; the
smallest adversarial perturbation seen is returned. The loss is the cross-entropy for the
first half of the steps and the logit margin for the second (see :class:`DDN`).

The loop of steps, step-size annealing, row bookkeeping and best-point tracking is shared
with FMN (:mod:`robust.attacks.fmn`) through :class:`NormSearch`; the two differ in how
the radius moves and how the perturbation is brought back to it.

Shapes: ``x`` (N, C, H, W) in the model's bounds, ``y`` (N,) labels (targets when
``targeted``). Distances and radii are L2 in input space.

Example:
    >>> ddn = robust.create_attack("ddn", steps=100)
    >>> result = ddn(model, x, y)
    >>> result.l2[result.success].median()
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable
from dataclasses import dataclass, fields

import torch

from robust.attack import Attack, clip, confirm, is_adversarial, lp_norms, per_sample
from robust.gradient import loss_and_gradient, steepest_direction
from robust.losses import ce, margin
from robust.model import Classifier
from robust.params import Param

FINAL_STEP_SIZE = 0.01  # DDN's step size anneals from 1 to this (the paper's code, Foolbox and adv-lib)


def cosine(start: float, end: float, t: int, steps: int) -> float:
    """Cosine annealing: ``start`` at ``t = 0``, ``end`` at ``t = steps``."""
    return end + (start - end) * (1 + math.cos(math.pi * t / steps)) / 2


@dataclass
class Rows:
    """Per-row state of the samples still searched; every field has one row per sample."""

    idx: torch.Tensor      # (n,) index of each row in the batch
    x: torch.Tensor        # (n, ...) clean inputs
    y: torch.Tensor        # (n,) labels or targets
    delta: torch.Tensor    # (n, ...) current perturbation
    radius: torch.Tensor   # (n,) current radius (input space, in the attack's norm)
    worst: torch.Tensor    # (n,) the largest perturbation the bounds allow
    found: torch.Tensor    # (n,) bool: an adversarial point was seen

    def keep(self, rows: torch.Tensor) -> Rows:
        """The rows where the bool mask ``rows`` is True."""
        return Rows(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})


@dataclass
class Seen:
    """What one step saw at the current points, per row."""

    adversarial: torch.Tensor  # (n,) bool
    size: torch.Tensor         # (n,) size of the current perturbation
    best: torch.Tensor         # (n,) size of the closest adversarial point so far (inf: none)
    loss: torch.Tensor         # (n,) the loss ascended (the logit margin after the last step)
    grad: torch.Tensor         # (n, ...) its input gradient

    def keep(self, rows: torch.Tensor) -> Seen:
        """The rows where the bool mask ``rows`` is True."""
        return Seen(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})


class Closest:
    """Per sample, the closest adversarial point found so far and its size."""

    def __init__(self, x: torch.Tensor) -> None:
        self.point = x.clone()
        self.size = torch.full((len(x),), math.inf, device=x.device, dtype=x.dtype)

    def update(self, idx: torch.Tensor, xa: torch.Tensor, size: torch.Tensor,
               adversarial: torch.Tensor) -> torch.Tensor:
        """Keep, for the samples ``idx``, each adversarial ``xa`` smaller than their best so far;
        returns their best sizes."""
        better = adversarial & (size < self.size[idx])
        best = torch.where(better, size, self.size[idx])
        self.size.index_copy_(0, idx, best)
        self.point.index_copy_(0, idx, torch.where(per_sample(better, xa), xa, self.point[idx]))
        return best


class NormSearch(Attack):
    """A gradient search of the smallest adversarial perturbation within a per-sample radius.

    Each step evaluates the loss (:meth:`objective`; by default the logit margin, the best
    other logit minus the label's, or the target's minus the best other one when targeted)
    and its gradient at the current points, records each point that is adversarial and
    smaller than its best so far, moves the radius (:meth:`next_radius`), steps along the
    L2-normalized gradient (:meth:`step_size`) and projects onto the radius (:meth:`project`)
    and the bounds. After the last step the last points are evaluated too (one forward pass).
    A sample adversarial at its start with a zero perturbation leaves the batch at once; the
    model is never called on an empty batch. Subclasses give the four abstract methods.
    """

    needs_eps = False

    def run(self, model: Classifier, x: torch.Tensor, y: torch.Tensor, *, eps: float | None, targeted: bool,
            generator: torch.Generator) -> torch.Tensor:
        steps = int(self.params["steps"])
        best = Closest(x)
        rows = self.begin(model, x, y, targeted)
        unit = self.step_unit(model, x)
        for t in range(steps):
            seen = self.observe(model, rows, targeted, best, self.objective(t, steps, rows.y, targeted))
            if t == 0 and bool((done := seen.adversarial & (seen.size == 0)).any()):
                if bool(done.all()):
                    return best.point
                rows, seen = rows.keep(~done), seen.keep(~done)
            rows.radius = self.next_radius(t, steps, rows, seen).minimum(rows.worst)
            moved = rows.delta + unit * self.step_size(t, steps) * self.direction(seen.grad, generator)
            rows.delta = clip(rows.x + self.step_onto(moved, rows), model.bounds) - rows.x
        self.observe(model, rows, targeted, best, None)
        return best.point

    def begin(self, model: Classifier, x: torch.Tensor, y: torch.Tensor, targeted: bool) -> Rows:
        """The rows at the start: zero perturbations, the first radius, the largest size the bounds allow."""
        lo, hi = model.bounds
        worst = lp_norms(torch.maximum(x - lo, hi - x), self.norm)
        return Rows(torch.arange(len(x), device=x.device), x, y, torch.zeros_like(x), self.first_radius(worst),
                    worst, torch.zeros(len(x), dtype=torch.bool, device=x.device))

    def objective(self, t: int, steps: int, y: torch.Tensor, targeted: bool) -> Callable[[torch.Tensor], torch.Tensor]:
        """The per-sample loss ascended at step ``t``: the logit margin (> 0 once adversarial)."""
        return lambda logits: margin(logits, y, targeted)

    def observe(self, model: Classifier, rows: Rows, targeted: bool, best: Closest,
                objective: Callable[[torch.Tensor], torch.Tensor] | None) -> Seen:
        """The loss (and its gradient, unless ``objective`` is None) at the current points; records the
        closest adversarial ones. Success is re-checked exactly where the gradient pass was approximate.
        """
        xa = (rows.x + rows.delta).detach()
        if objective is not None:
            logits, loss, grad = loss_and_gradient(model, xa, objective)
        else:
            with torch.no_grad():
                logits = model(xa)
            loss, grad = margin(logits, rows.y, targeted), torch.zeros_like(xa)
        adversarial = confirm(model, xa, is_adversarial(logits, rows.y, targeted),
                              lambda sel, exact: is_adversarial(exact, rows.y[sel], targeted))
        size = lp_norms(rows.delta, self.norm)
        rows.found = rows.found | adversarial
        return Seen(adversarial, size, best.update(rows.idx, xa, size, adversarial), loss, grad)

    @staticmethod
    def direction(grad: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The gradient scaled to unit L2 norm per sample; a zero gradient becomes a random direction."""
        zero = grad.flatten(1).norm(dim=1) == 0
        if bool(zero.any()):
            noise = torch.randn(grad.shape, generator=generator, device=grad.device, dtype=grad.dtype)
            grad = torch.where(per_sample(zero, grad), noise, grad)
        return steepest_direction(grad, "l2")

    def step_unit(self, model: Classifier, x: torch.Tensor) -> float:
        """What :meth:`step_size` is measured in (input space, L2); 1 unless a subclass says otherwise."""
        return 1.0

    @abc.abstractmethod
    def step_size(self, t: int, steps: int) -> float:
        """The step size (L2, input space) of step ``t``."""

    @abc.abstractmethod
    def first_radius(self, worst: torch.Tensor) -> torch.Tensor:
        """The radius before the first step (per sample)."""

    @abc.abstractmethod
    def next_radius(self, t: int, steps: int, rows: Rows, seen: Seen) -> torch.Tensor:
        """The radius for step ``t``'s projection, from what was seen at the current points."""

    def step_onto(self, moved: torch.Tensor, rows: Rows) -> torch.Tensor:
        """Where a step's perturbations go for the rows' radii: :meth:`project` unless a subclass says otherwise."""
        return self.project(moved, rows.radius)

    @abc.abstractmethod
    def project(self, delta: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
        """Bring the perturbations (n, ...) back to the radii (n,)."""


class DDN(NormSearch):
    """Decoupled Direction and Norm: a per-sample radius that shrinks while adversarial, grows while not.

    Rony, Hafemann, Oliveira, Ben Ayed, Sabourin and Granger, "Decoupling Direction and Norm
    for Efficient Gradient-Based L2 Adversarial Attacks and Defenses", CVPR 2019
    (arXiv:1811.09600). Norm: L2 only.

    Args (keyword hyperparameters):
        norm: "l2" only.
        steps: gradient steps (default 100); each costs one forward and one backward pass,
            and one more forward pass evaluates the last point.
        gamma: the radius is multiplied by ``1 - gamma`` after an adversarial point and by
            ``1 + gamma`` after a robust one (default 0.05).
        init_norm: the first radius, L2 in input space (default 1.0).

    The step size is cosine-annealed from 1 to 0.01 over the steps (as in the paper's code,
    Foolbox and adv-lib); the step follows the L2-normalized gradient, and the perturbation is
    then rescaled to the radius (the paper's projection onto the sphere) and clipped to the
    bounds. No quantization. Targeted: ``y`` holds the targets.

    The loss ascended is the paper's cross-entropy for the first half of the steps and the
    logit margin for the second half. Cross-entropy weighs every class, which picks a good
    direction while the radius is still large (on a trained MNIST CNN, margin alone ends about
    3% further at 100 steps); but where the softmax is flat (a linear model with small logits)
    its gradient points between classes, and a search on cross-entropy alone settles a third
    above the minimal distance. The margin's gradient points at the nearest boundary, so the
    second half converges to it (within 0.05% on the linear oracle at 1000 steps).

    Per sample, the smallest adversarial perturbation seen is returned; a sample never broken
    comes back unchanged. With ``eps`` the harness projects the result.
    """

    name = "ddn"
    parameters = (
        Param("norm", str, "l2", "l2 only", choices=("l2",)),
        Param("steps", int, 100, "gradient steps", low=1),
        Param("gamma", float, 0.05, "relative change of the radius per step", low=0, high=1, open_low=True,
              open_high=True),
        Param("init_norm", float, 1.0, "the first radius (L2, input space)", low=0, open_low=True),
    )

    def step_size(self, t: int, steps: int) -> float:
        return cosine(1.0, FINAL_STEP_SIZE, t, steps)

    def objective(self, t: int, steps: int, y: torch.Tensor, targeted: bool) -> Callable[[torch.Tensor], torch.Tensor]:
        if 2 * t < steps:
            return lambda logits: ce(logits, y, targeted)
        return super().objective(t, steps, y, targeted)

    def first_radius(self, worst: torch.Tensor) -> torch.Tensor:
        return torch.full_like(worst, float(self.params["init_norm"])).minimum(worst)

    def next_radius(self, t: int, steps: int, rows: Rows, seen: Seen) -> torch.Tensor:
        gamma = float(self.params["gamma"])
        return torch.where(seen.adversarial, rows.radius * (1 - gamma), rows.radius * (1 + gamma))

    def project(self, delta: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
        return delta * per_sample(radius / delta.flatten(1).norm(dim=1).clamp_min(1e-12), delta)
