"""Budget-fair comparison: every framework judged on what it found within the same model passes per point.

A framework's attack runs against a watched model. Each batch that reaches the model is
matched to the clean points it came from (nearest clean point, on a fixed subset of
coordinates), each point is charged one pass for every forward and every backward of a row
that belongs to it, and every row the model sees is judged on the spot: misclassified (or
classified as the target), inside the bounds and, for a fixed-budget attack, inside the eps
ball. A point's result is the smallest such row seen while it had passes left, as in
AttackBench (Cinà et al. 2025); once every point has spent its budget the run is stopped. The
framework's own final output is judged the same way, as one more pass.

Counting happens in the model, never in the library, so every framework (ours included) is
charged alike; the harness then verifies the chosen points as it verifies any output.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from robust.attack import Attack, is_adversarial, lp_norms
from robust.model import Classifier, Wrapper

MATCH_COORDINATES = 4096  # coordinates compared when matching rows to clean points


class BudgetSpent(Exception):
    """Every point of the batch has used its passes: the attack is stopped."""


class _Through(nn.Module):
    def __init__(self, inner: Classifier) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)


class Watched(Wrapper):
    """``inner`` seen through a per-point pass budget, keeping each point's best row.

    Args:
        inner: the classifier under attack (it counts the passes of the evaluation).
        x, y: the clean points of the batch and their labels (targets when ``targeted``).
        budget: forward plus backward passes each point may use.
        norm: "linf", "l2", "l1" or "l0", the distance in which the best row is the smallest.
        eps: a fixed-budget attack's eps (rows beyond it are not taken); None for a
            minimal-norm attack.
        targeted: success is the target class instead of any other class.
    """

    def __init__(self, inner: Classifier, x: torch.Tensor, y: torch.Tensor, *, budget: int, norm: str,
                 eps: float | None, targeted: bool) -> None:
        super().__init__(_Through(inner), bounds=inner.bounds, device=inner.device)
        self.counter, self.inner, self.name = inner.counter, inner, inner.name
        self.x, self.y = x.detach(), y.detach()
        self.budget, self.norm, self.eps, self.targeted = budget, norm, eps, targeted
        self.spent = torch.zeros(len(x), dtype=torch.long, device=x.device)
        self.best = self.x.clone()
        self.best_distance = torch.full((len(x),), math.inf, device=x.device)
        flat = self.x.flatten(1)
        generator = torch.Generator().manual_seed(0)
        keep = torch.randperm(flat.shape[1], generator=generator)[:MATCH_COORDINATES].sort().values
        self.coordinates = keep.to(x.device)
        self.keys = flat[:, self.coordinates].float()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if bool((self.spent >= self.budget).all()):
            raise BudgetSpent
        logits = super().forward(z)
        owners = self.owners(z)
        self._take(z.detach(), logits.detach(), owners)
        self.spent.index_add_(0, owners, torch.ones_like(owners))
        if logits.requires_grad:
            logits.register_hook(lambda grad: self._charge(owners))
        return logits

    def _charge(self, owners: torch.Tensor) -> None:
        self.spent.index_add_(0, owners, torch.ones_like(owners))

    def owners(self, z: torch.Tensor) -> torch.Tensor:
        """The clean point each row of ``z`` comes from (the nearest one)."""
        rows = z.detach().flatten(1)[:, self.coordinates].float()
        return torch.cdist(rows, self.keys).argmin(dim=1)

    def _take(self, z: torch.Tensor, logits: torch.Tensor, owners: torch.Tensor) -> None:
        """Keep, per point with passes left, its smallest adversarial row of this pass."""
        hit = is_adversarial(logits, self.y[owners], self.targeted)
        d = lp_norms((z - self.x[owners]).float(), self.norm)
        lo, hi = self.bounds
        flat = z.flatten(1)
        inside = (flat >= lo - 1e-6).all(dim=1) & (flat <= hi + 1e-6).all(dim=1)
        if self.eps is not None:
            inside &= d <= self.eps * (1 + 1e-5) + 1e-7
        better = hit & inside & (self.spent[owners] < self.budget) & (d < self.best_distance[owners])
        if not bool(better.any()):
            return
        rows, points, d = better.nonzero().flatten(), owners[better], d[better]
        smallest = torch.full_like(self.best_distance, math.inf).scatter_reduce(0, points, d, "amin")
        first = rows[d == smallest[points]]
        chosen = owners[first]
        self.best[chosen] = z[first].to(self.best.dtype)
        self.best_distance[chosen] = smallest[chosen]

    def wrapped(self) -> Classifier:
        return self.inner


def budgeted(attack: Attack, budget: int) -> Attack:
    """``attack`` (any framework's, ours included) judged on the best point each sample reached within
    ``budget`` forward plus backward passes; its output is verified like any other framework's."""
    base = type(attack)

    def run(self: Attack, model: Classifier, x: torch.Tensor, y: torch.Tensor, *, eps: float | None,
            targeted: bool, generator: torch.Generator) -> torch.Tensor:
        watched = Watched(model, x, y, budget=budget, norm=self.norm, eps=eps if base.needs_eps else None,
                          targeted=targeted)
        try:
            out: Any = base.run(self, watched, x, y, eps=eps, targeted=targeted, generator=generator)
            final = out[0] if isinstance(out, tuple) else out
            with torch.no_grad():
                watched(final.detach())
        except BudgetSpent:
            pass
        return watched.best.to(x.dtype)

    attrs: dict[str, Any] = {"run": run, "verify_only": True, "budget": budget, "__doc__": base.__doc__}
    cls = type(base.__name__, (base,), attrs)
    wrapped: Attack = cls(**attack.given)
    return wrapped

