"""Carlini and Wagner L2 attack (Carlini and Wagner 2017, arXiv:1608.04644).

Shapes: ``x`` (N, C, H, W) in the model's bounds, ``y`` (N,) labels (targets when
``targeted``). Distances are L2 in input space. A minimization attack: it needs no eps;
an eps given to the harness only caps the result (by projection).

Example:
    >>> cw = robust.create_attack("cw", steps=100, binary_search_steps=5)
    >>> result = cw(model, x, y)
    >>> result.l2[result.success].median()
"""

from __future__ import annotations

import math

import torch

from robust.attack import Attack, confirm, per_sample
from robust.losses import margin
from robust.model import Classifier
from robust.params import Param

SHRINK = 0.999999  # keeps the bounds themselves finite in tanh space


def to_tanh_space(x: torch.Tensor, bounds: tuple[float, float]) -> torch.Tensor:
    """Map inputs in ``bounds`` to the unconstrained variable w (x = mid + half * tanh(w))."""
    mid, half = (bounds[0] + bounds[1]) / 2, (bounds[1] - bounds[0]) / 2
    return torch.atanh(((x - mid) / half).clamp(-1.0, 1.0) * SHRINK)


def from_tanh_space(w: torch.Tensor, bounds: tuple[float, float]) -> torch.Tensor:
    """Map the unconstrained variable w back into ``bounds``."""
    mid, half = (bounds[0] + bounds[1]) / 2, (bounds[1] - bounds[0]) / 2
    return torch.tanh(w) * half + mid


class BatchAdam:
    """Adam (Kingma and Ba 2015) over one batched tensor, each row with its own moments."""

    def __init__(self, like: torch.Tensor, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.lr, self.betas, self.eps, self.t = lr, betas, eps, 0
        self.m = torch.zeros_like(like)
        self.v = torch.zeros_like(like)

    def step(self, grad: torch.Tensor) -> torch.Tensor:
        """The update to subtract from the variable for this gradient."""
        b1, b2 = self.betas
        self.t += 1
        self.m.mul_(b1).add_(grad, alpha=1 - b1)
        self.v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        m_hat = self.m / (1 - b1 ** self.t)
        v_hat = self.v / (1 - b2 ** self.t)
        return self.lr * m_hat / (v_hat.sqrt() + self.eps)


class CarliniWagnerL2(Attack):
    """Carlini and Wagner's L2 attack: Adam in tanh space, binary search over the constant c.

    Per sample it minimizes ``||x' - x||_2^2 + c * max(0, kappa - margin(x'))`` over
    ``x' = mid + half * tanh(w)`` (so x' stays inside the bounds), where the margin is
    the logit of ``y`` minus the best other logit (targeted) or the reverse (untargeted).
    The constant c starts at ``initial_const`` and is multiplied by 10 until a first
    success, then bisected, independently per sample.

    Args (keyword hyperparameters):
        norm: "l2" only.
        steps: Adam steps per binary-search step (default 1000).
        lr: Adam step size on w (default 0.01).
        binary_search_steps: constants tried per sample (default 9; from 10 on, the
            last step repeats the best constant found, as in the paper's code).
        initial_const: first constant c (default 1e-3).
        confidence: kappa, the logit margin a success must exceed (default 0).
        abort_early: leave a binary-search step once the batch's total loss has not fallen
            by 0.01% over steps / 10 iterations (the paper's rule, as Foolbox, ART and
            adv-lib apply it; a per-sample rule ended points that were still closing in).

    Per sample, the smallest perturbation that succeeded (with kappa) over all constants
    and steps is returned; a sample never broken comes back unchanged.
    """

    name = "cw"
    needs_eps = False
    parameters = (
        Param("norm", str, "l2", "l2 only", choices=("l2",)),
        Param("steps", int, 1000, "Adam steps per binary-search step", low=1),
        Param("lr", float, 0.01, "Adam step size on w (tanh space)", low=0, open_low=True),
        Param("binary_search_steps", int, 9, "constants tried per sample", low=1),
        Param("initial_const", float, 1e-3, "first constant c", low=0, open_low=True),
        Param("confidence", float, 0.0, "kappa: the logit margin a success must exceed", low=0),
        Param("abort_early", bool, True, "leave a binary-search step once the loss stalls"),
    )

    def run(self, model: Classifier, x: torch.Tensor, y: torch.Tensor, *, eps: float | None, targeted: bool,
            generator: torch.Generator) -> torch.Tensor:
        searches = self.params["binary_search_steps"]
        const = torch.full((len(x),), float(self.params["initial_const"]), device=x.device, dtype=x.dtype)
        lower, upper = torch.zeros_like(const), torch.full_like(const, math.inf)
        best, best_l2 = x.clone(), torch.full_like(const, math.inf)
        w0 = to_tanh_space(x, model.bounds)
        for search in range(searches):
            if searches >= 10 and search == searches - 1:
                const = upper.clamp(max=1e10)
            found = self.minimize(model, x, y, w0, const, targeted, best, best_l2)
            upper = torch.where(found, const, upper)
            lower = torch.where(found, lower, const)
            const = torch.where(upper.isinf(), const * 10, (lower + upper) / 2)
        return best

    def minimize(self, model: Classifier, x: torch.Tensor, y: torch.Tensor, w0: torch.Tensor, const: torch.Tensor,
                 targeted: bool, best: torch.Tensor, best_l2: torch.Tensor) -> torch.Tensor:
        """One binary-search step for the whole batch; updates ``best`` in place.

        Returns which samples succeeded (with kappa) at some step.
        """
        steps, kappa, abort = self.params["steps"], float(self.params["confidence"]), self.params["abort_early"]
        period = math.ceil(steps / 10)
        x0 = from_tanh_space(w0, model.bounds)  # the start, as tanh space reconstructs x
        idx = torch.arange(len(x), device=x.device)
        found = torch.zeros(len(x), dtype=torch.bool, device=x.device)
        w, adam = w0.clone(), BatchAdam(w0, float(self.params["lr"]))
        xs, x0s, ys, cs, prev = x, x0, y, const, torch.full_like(const, math.inf)
        for step in range(steps):
            w.requires_grad_(True)
            xa = from_tanh_space(w, model.bounds)
            gap = margin(model(xa), ys, targeted)
            loss = (xa - x0s).flatten(1).square().sum(1) + cs * (kappa - gap).clamp_min(0)
            grad, = torch.autograd.grad(loss.sum(), w)
            with torch.no_grad():
                hit = confirm(model, xa, gap.detach() > kappa,
                              lambda rows, exact: margin(exact, ys[rows], targeted) > kappa)
                self.record(xa.detach(), xs, hit, idx, best, best_l2, found)
                w = w.detach() - adam.step(grad)
                if not abort or step % period:
                    continue
                total = float(loss.detach().sum())  # the one sync per check
                if total > 0.9999 * float(prev[0]):
                    break
                prev.fill_(total)
        return found

    @staticmethod
    def record(xa: torch.Tensor, x: torch.Tensor, success: torch.Tensor, idx: torch.Tensor, best: torch.Tensor,
               best_l2: torch.Tensor, found: torch.Tensor) -> None:
        """Keep, for the samples ``idx``, each success that is closer than the best so far."""
        l2 = (xa - x).flatten(1).norm(dim=1)
        better = success & (l2 < best_l2[idx])
        best_l2.index_copy_(0, idx, torch.where(better, l2, best_l2[idx]))
        best.index_copy_(0, idx, torch.where(per_sample(better, xa), xa, best[idx]))
        found.index_copy_(0, idx, found[idx] | success)
