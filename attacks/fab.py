"""FAB, the Fast Adaptive Boundary attack, and its targeted version FAB-T, in Linf and L2.

Croce and Hein, "Minimally distorted Adversarial Examples with a Fast Adaptive Boundary
Attack", ICML 2020 (arXiv:1907.02044); FAB-T is the version in AutoAttack (arXiv:2003.01690).

A minimization attack. At every step the model is linearized at the iterate ``x1``: the
difference ``f`` of two logits (the own class and another) defines the hyperplane
``{z : f(x1) + grad f(x1) . (z - x1) = 0}``. Both ``x1`` and the original point ``x0`` are
projected onto that hyperplane within the box (:mod:`robust.attacks.fab_projections`), giving
steps ``d1`` and ``d2``; the next iterate is
``clip((1 - alpha) (x1 + eta d1) + alpha (x0 + eta d2))`` with
``alpha = clamp(|d1| / (|d1| + |d2|), 0, alpha_max)``. An adversarial iterate is recorded when
it is the closest so far and then pulled back to ``x0 + beta (x1 - x0)``, so the search
tightens around the boundary. Restarts after the first begin at a random point at half of
``min(best distance, eps)`` from ``x0``.

FAB (``"fab"``) takes, at every step, the hyperplane of the closest linearized boundary over
all other classes (``K - 1`` backward passes a step). FAB-T (``"fab-t"``) runs once per target,
the top ``targets`` other classes by clean logit, each against the boundary between the label
and that target (one backward pass a step), on the points no earlier target broke; success is
any misclassification.

With ``eps``, a point leaves the batch as soon as it has an adversarial point within ``eps``
(in the attack's norm), and ``eps`` caps the restart radius; without it, every step, target
and restart runs on every point and the smallest adversarial perturbation is kept. A point
the model already misclassifies is returned unchanged. Success is always judged by a plain
(exact) forward pass, so a bf16 gradient pass never decides it.

The step, its defaults and FAB-T's choice of targets follow pyautoattack 0.2.0 (the authors'
code), with one saving: the reference judges every new iterate with a plain forward pass and
then linearizes it with a second pass; here the linearizing pass judges it too, and a
pulled-back iterate reuses the hyperplane of the point it was pulled back from (its offset
moved along the gradient), so a step costs one forward and one backward pass, not two
forward and one backward. Its L2 projection misses the hyperplane on some rows where many inputs sit on the
bounds (MNIST's black pixels); the projections here are exact, so L2 runs there find more.

With ``targeted=True`` both attack the boundary between the target and its strongest rival at
the iterate (the clean prediction at the start, so the first step is the boundary between the
prediction and the target); success means predicting the target.

Shapes: ``x`` (N, C, H, W) in the model's bounds, ``y`` (N,) labels (targets when
``targeted``). Distances and ``eps`` are in input space.

Example:
    >>> fab = robust.create_attack("fab-t", norm="linf", steps=100, targets=9)
    >>> result = fab(model, x, y, eps=0.3)
    >>> robust.create_attack("fab", norm="l2")(model, x, y).l2.median()
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from robust.attack import Attack, clip, confirm, flat_norms, is_adversarial, num_classes, per_sample
from robust.model import Classifier
from robust.params import Param

from .screen import SCREEN, hopeless
from .fab_projections import project

NORM = Param("norm", str, "linf", "the norm minimized (and of eps)", choices=("linf", "l2"))
STEPS = Param("steps", int, 100, "iterations per restart (per target for fab-t)", low=1)
RESTARTS = Param("restarts", int, 1, "runs per target; after the first, each starts at a random point at half of "
                 "min(best distance, eps) from the input", low=1)
ETA = Param("eta", float, 1.05, "extrapolation: each step goes eta times the projections' steps", low=1)
BETA = Param("beta", float, 0.9, "after an adversarial iterate, go back to x + beta * (x_adv - x)",
             low=0, high=1, open_low=True)
ALPHA_MAX = Param("alpha_max", float, 0.1, "largest weight of the original point's projection in a step",
                  low=0, high=1)
TARGETS = Param("targets", int, 9, "target classes, the top ones by logit at the clean point other than the label",
                low=1)
PRUNE = Param("prune", float, None, "with eps: after 30% of a run's steps, give up the points whose closest adversarial "
              "point so far lies beyond prune * eps (or none was found); none: every step", low=1, nullable=True)
PRUNE_AT = 0.3  # share of a run's steps after which ``prune`` judges
START_RADIUS = {"linf": 0.3, "l2": 1.0}  # restart radius (times the box span) without eps or a success: the reference's eps


@dataclass
class Best:
    """The closest adversarial point found so far per sample, across targets and restarts.

    Attributes:
        x: the clean inputs (N, ...).
        x_adv: the closest adversarial point (N, ...), ``x`` where none was found.
        dist: its distance (N,) in the attack's norm, inf where none was found.
        bar: a sample is done once ``dist <= bar`` (eps, or 0 without one).
        skip: samples left out (screened as hopeless), or None.
    """

    x: torch.Tensor
    x_adv: torch.Tensor
    dist: torch.Tensor
    bar: float
    skip: torch.Tensor | None = None

    def open(self) -> torch.Tensor:
        """Indices of the samples still to attack."""
        todo = self.dist > self.bar
        return (todo if self.skip is None else todo & ~self.skip).nonzero().squeeze(1)

    def record(self, idx: torch.Tensor, xa: torch.Tensor, dist: torch.Tensor, hit: torch.Tensor) -> None:
        """Keep, for the samples ``idx``, each adversarial ``xa`` closer than the best so far."""
        better = hit & (dist < self.dist[idx])
        self.dist.index_copy_(0, idx, torch.where(better, dist, self.dist[idx]))
        self.x_adv.index_copy_(0, idx, torch.where(per_sample(better, xa), xa, self.x_adv[idx]))


class FAB(Attack):
    """FAB: minimal adversarial perturbations by projections onto linearized boundaries.

    Args (keyword hyperparameters):
        norm: "linf" or "l2", the norm minimized.
        steps: iterations per restart (default 100).
        restarts: runs; the first starts at the input, the others at a random point at half
            of ``min(best distance, eps)`` from it (default 1).
        eta: extrapolation factor of each step (default 1.05).
        beta: back-step factor after an adversarial iterate (default 0.9).
        alpha_max: largest weight of the original point's projection (default 0.1).

    Untargeted, each step takes the closest linearized boundary over all other classes:
    one forward pass with gradients and ``K - 1`` backward passes. With ``targeted=True`` it runs against the boundary between the
    given target and the strongest other class at the iterate (at first the clean prediction;
    one backward pass a step), and success means predicting the target.
    """

    name = "fab"
    parameters: ClassVar[tuple[Param, ...]] = (NORM, STEPS, RESTARTS, ETA, BETA, ALPHA_MAX)
    needs_eps = False
    takes_eps = True

    def run(self, model: Classifier, x: torch.Tensor, y: torch.Tensor, *, eps: float | None, targeted: bool,
            generator: torch.Generator) -> torch.Tensor:
        if eps == 0:
            return x  # nothing moves; the harness judges the clean points
        classes = num_classes(model, x)
        self.check(classes >= 2, f"attack {self.name!r} needs a model with at least 2 classes")
        with torch.no_grad():
            clean = model(x)
        pred = clean.argmax(dim=1)
        done = pred == y if targeted else pred != y
        dist = torch.where(done, torch.zeros_like(y, dtype=x.dtype), torch.full_like(y, torch.inf, dtype=x.dtype))
        best = Best(x, x.clone(), dist, 0.0 if eps is None else float(eps))
        if targeted:  # the own class is the strongest other than the target: the clean prediction at first
            self.search(model, best, None, y, y, True, eps, generator)
        else:
            self.untargeted(model, best, clean, y, eps, generator)
        return best.x_adv

    def untargeted(self, model: Classifier, best: Best, clean: torch.Tensor, y: torch.Tensor, eps: float | None,
                   generator: torch.Generator) -> None:
        """The untargeted attack: the closest boundary over all classes at every step."""
        self.search(model, best, y, None, y, False, eps, generator)

    def search(self, model: Classifier, best: Best, own: torch.Tensor | None, aim: torch.Tensor | None,
               label: torch.Tensor, targeted: bool, eps: float | None, generator: torch.Generator) -> None:
        """All restarts against one boundary on the open samples: between ``own`` and ``aim``, the
        closest one from ``own`` where ``aim`` is None, the one between ``aim`` and its strongest
        rival at the iterate where ``own`` is None."""
        for restart in range(int(self.params["restarts"])):
            idx = best.open()
            if idx.numel() == 0:
                return
            x0 = best.x[idx]
            start = x0 if restart == 0 else self.random_start(model, x0, best.dist[idx], eps, generator)
            self.descend(model, best, idx, start, _rows(own, idx), _rows(aim, idx), label[idx], targeted, eps is not None)

    def descend(self, model: Classifier, best: Best, idx: torch.Tensor, xa: torch.Tensor, own: torch.Tensor | None,
                aim: torch.Tensor | None, label: torch.Tensor, targeted: bool, early: bool) -> None:
        """One run of ``steps`` iterations on the samples ``idx`` from ``xa``; updates ``best``.

        Each iterate is judged on the logits of the pass that also gives its gradient (confirmed
        by an exact pass where that pass is approximate), and the last one by a plain pass: one
        forward and one backward pass a step. An adversarial iterate is recorded and pulled back
        towards ``x0``; the pulled-back point keeps the iterate's hyperplane, its offset moved
        along the gradient (exact where the model is linear between the two points), so it needs
        no pass of its own. With ``early`` (eps given) a sample leaves once its best distance is
        within ``best.bar``, and, with ``prune``, after 30% of the steps if it is still beyond
        ``prune * best.bar``.
        """
        beta = float(self.params["beta"])
        x0 = best.x[idx]
        steps = int(self.params["steps"])
        give_up_at = max(int(PRUNE_AT * steps), 1) if self.params.get("prune") is not None else -1
        for t in range(steps):
            xa = xa.detach().requires_grad_(True)
            logits = model(xa)
            gap, grad = self.hyperplane(logits, xa, own, aim)
            with torch.no_grad():
                xa = xa.detach()
                hit = confirm(model, xa, is_adversarial(logits.detach(), label, targeted),
                              lambda rows, exact: is_adversarial(exact, label[rows], targeted))
                self._record(best, idx, xa, x0, hit)
                back = x0 + beta * (xa - x0)
                gap = torch.where(hit, gap + (grad * (back - xa)).flatten(1).sum(dim=1), gap)
                xa = torch.where(per_sample(hit, xa), back, xa)
                if early:
                    keep = best.dist[idx] > best.bar
                    if t + 1 == give_up_at:
                        keep &= best.dist[idx] <= float(self.params.get("prune") or 0) * best.bar
                    if not bool(keep.any()):
                        return
                    if not bool(keep.all()):
                        idx, xa, x0, label = idx[keep], xa[keep], x0[keep], label[keep]
                        gap, grad, own, aim = gap[keep], grad[keep], _rows(own, keep), _rows(aim, keep)
                xa = self.step(xa, x0, gap, grad, model.bounds)
        with torch.no_grad():
            self._record(best, idx, xa, x0, is_adversarial(model(xa), label, targeted))

    def _record(self, best: Best, idx: torch.Tensor, xa: torch.Tensor, x0: torch.Tensor, hit: torch.Tensor) -> None:
        l2, linf = flat_norms(xa - x0)
        best.record(idx, xa, l2 if self.norm == "l2" else linf, hit)

    def hyperplane(self, logits: torch.Tensor, xa: torch.Tensor, own: torch.Tensor | None,
                   aim: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The linearized boundary at ``xa``: the logit difference ``z_k - z_own`` (N,) and its
        gradient (N, ...), for ``k = aim`` or, where ``aim`` is None, the class whose linearized
        boundary is closest, ``|z_k - z_own| / ||grad||_*`` (dual norm: L1 for Linf, L2 for L2).
        Where ``own`` is None it is the strongest class other than ``aim`` at ``xa``."""
        if own is None:
            assert aim is not None
            own = logits.detach().scatter(1, aim[:, None], -torch.inf).argmax(dim=1)
        own_logit = logits.gather(1, own[:, None]).squeeze(1)
        if aim is not None:
            gap = logits.gather(1, aim[:, None]).squeeze(1) - own_logit
            grad, = torch.autograd.grad(gap.sum(), xa)
            return gap.detach(), grad
        classes = logits.shape[1]
        best_dist = torch.full_like(own_logit, torch.inf).detach()
        best_gap, best_grad = torch.zeros_like(best_dist), torch.zeros_like(xa)
        for shift in range(1, classes):
            gap = logits.gather(1, ((own + shift) % classes)[:, None]).squeeze(1) - own_logit
            grad, = torch.autograd.grad(gap.sum(), xa, retain_graph=shift < classes - 1)
            flat = grad.flatten(1)
            dual = flat.norm(dim=1) if self.norm == "l2" else flat.abs().sum(dim=1)
            dist = gap.detach().abs() / (dual + 1e-12)
            better = dist < best_dist
            best_dist = torch.where(better, dist, best_dist)
            best_gap = torch.where(better, gap.detach(), best_gap)
            best_grad = torch.where(per_sample(better, grad), grad, best_grad)
        return best_gap, best_grad

    def step(self, xa: torch.Tensor, x0: torch.Tensor, gap: torch.Tensor, grad: torch.Tensor,
             bounds: tuple[float, float]) -> torch.Tensor:
        """FAB's update: project ``xa`` and ``x0`` onto the hyperplane within the box, combine, extrapolate."""
        eta, alpha_max = float(self.params["eta"]), float(self.params["alpha_max"])
        n, w = len(xa), grad.flatten(1)
        here, origin = xa.flatten(1), x0.flatten(1)
        need_here = -gap  # the change of w . z that reaches the hyperplane from xa ...
        need_origin = -gap - (w * (origin - here)).sum(dim=1)  # ... and from x0
        steps = project(torch.cat((here, origin)), torch.cat((w, w)), torch.cat((need_here, need_origin)), bounds,
                        self.norm)
        l2, linf = flat_norms(steps)
        size = (l2 if self.norm == "l2" else linf).clamp_min(1e-8)
        alpha = (size[:n] / (size[:n] + size[n:])).clamp(0.0, alpha_max)[:, None]
        moved = (here + eta * steps[:n]) * (1 - alpha) + (origin + eta * steps[n:]) * alpha
        return clip(moved.view_as(xa), bounds)

    def random_start(self, model: Classifier, x0: torch.Tensor, dist: torch.Tensor, eps: float | None,
                     generator: torch.Generator) -> torch.Tensor:
        """A random point at half of ``min(dist, eps)`` from ``x0`` in the attack's norm (a box-relative
        default radius where neither is finite), clipped to the bounds."""
        lo, hi = model.bounds
        cap = START_RADIUS[self.norm] * (hi - lo)
        radius = dist.clamp(max=cap if eps is None else float(eps))
        if self.norm == "linf":
            noise = 2 * torch.rand(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype) - 1
            size = noise.flatten(1).abs().amax(dim=1)
        else:
            noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
            size = noise.flatten(1).norm(dim=1)
        return clip(x0 + per_sample(0.5 * radius / size.clamp_min(1e-12), x0) * noise, model.bounds)


def _rows(values: torch.Tensor | None, rows: torch.Tensor) -> torch.Tensor | None:
    return None if values is None else values[rows]


class FABTargeted(FAB):
    """FAB-T, AutoAttack's FAB: FAB against the boundary with each of the top other classes in turn.

    Args (keyword hyperparameters):
        norm, steps, restarts, eta, beta, alpha_max: as for :class:`FAB` (steps and restarts
            per target).
        targets: how many target classes, the top ones by logit at the clean point other than
            the label (default 9; never more than the model has other classes).
        screen: with eps, leave out the points a 20-step APGD-DLR run leaves with a DLR loss
            below ``-screen`` (:func:`robust.attacks.screen.hopeless`; default None: every point).
        prune: with eps, a target's run gives up, after 30% of its steps, the points whose
            closest adversarial point found so far (by any target) lies beyond ``prune * eps``
            (default None: never). FAB's distance falls fast and then slowly: on the zoo's
            resnet-at, the one point FAB-T broke after APGD-T was at 1.07 eps after 30 steps,
            while 1.3 eps gives up on two thirds of the rest.

    Each target costs one forward pass with gradients and one backward pass a step. With ``eps``, a target runs only on the points that no earlier target
    broke within eps; without it, every target runs on every point, so the closest boundary
    among the targets is found. Success is any misclassification. With ``targeted=True`` the
    call's ``y`` are the targets, as for :class:`FAB`.
    """

    name = "fab-t"
    parameters = (NORM, STEPS, RESTARTS, ETA, BETA, ALPHA_MAX, TARGETS, SCREEN, PRUNE)

    def untargeted(self, model: Classifier, best: Best, clean: torch.Tensor, y: torch.Tensor, eps: float | None,
                   generator: torch.Generator) -> None:
        if eps is not None:
            best.skip = hopeless(model, best.x, y, eps, self.norm, self.params["screen"])
        order = clean.scatter(1, y[:, None], -torch.inf).argsort(dim=1, descending=True)
        for rank in range(min(int(self.params["targets"]), order.shape[1] - 1)):
            self.search(model, best, y, order[:, rank], y, False, eps, generator)
