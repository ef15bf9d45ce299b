"""Projected gradient descent, Linf and L2 (Madry et al. 2018, arXiv:1706.06083).

Shapes: ``x`` (N, C, H, W) in the model's bounds, ``y`` (N,) labels (targets when
``targeted``). ``eps`` and ``step_size`` are in input space.

Example:
    >>> pgd = robust.create_attack("pgd", steps=40, loss="margin")
    >>> result = pgd(model, x, y, eps=0.3)
    >>> result.success.float().mean()
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from robust.attack import Attack, confirm, is_adversarial
from robust.model import Classifier


def ce_loss(logits: torch.Tensor, y: torch.Tensor, targeted: bool) -> torch.Tensor:
    """Per-sample cross-entropy to ascend (its negative when targeted)."""
    loss = F.cross_entropy(logits, y, reduction="none")
    return -loss if targeted else loss


def margin_loss(logits: torch.Tensor, y: torch.Tensor, targeted: bool) -> torch.Tensor:
    """Per-sample logit margin to ascend (Carlini and Wagner 2017): best other class minus class ``y``."""
    own = logits.gather(1, y[:, None]).squeeze(1)
    other = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf")).amax(dim=1)
    return own - other if targeted else other - own


LOSSES = {"ce": ce_loss, "margin": margin_loss}


class PGD(Attack):
    """Projected gradient descent with random start, restarts and per-sample early exit.

    Args (keyword hyperparameters):
        norm: "linf" (signed-gradient steps) or "l2" (normalized-gradient steps).
        steps: gradient steps per restart (default 40).
        step_size: absolute step in input space (default 2.5 * eps / steps).
        random_start: start uniformly inside the eps ball (default True).
        restarts: independent runs; a sample already fooled is not restarted (default 1).
        loss: "ce" (cross-entropy) or "margin" (CW logit margin).

    A sample leaves the batch at the first step where the model misclassifies it, and that
    point is kept, so later steps get cheaper.
    """

    name = "pgd"
    defaults = {
        "norm": "linf", "steps": 40, "step_size": None, "random_start": True, "restarts": 1, "loss": "ce",
    }

    def validate(self, params: dict[str, Any]) -> None:
        self.check(isinstance(params["steps"], int) and params["steps"] >= 1, f"steps must be an integer >= 1, got {params['steps']!r}")
        self.check(isinstance(params["restarts"], int) and params["restarts"] >= 1,
                   f"restarts must be an integer >= 1, got {params['restarts']!r}")
        self.check(params["loss"] in LOSSES, f"loss must be one of {', '.join(LOSSES)}, got {params['loss']!r}")
        size = params["step_size"]
        self.check(size is None or (isinstance(size, (int, float)) and size > 0), f"step_size must be > 0, got {size!r}")

    def schedule(self, eps: float) -> tuple[int, float, bool, int]:
        """Steps, step size, random start and restarts for this eps."""
        p = self.params
        step_size = p["step_size"] if p["step_size"] is not None else 2.5 * eps / p["steps"]
        return p["steps"], float(step_size), bool(p["random_start"]), p["restarts"]

    def run(self, model: Classifier, x: torch.Tensor, y: torch.Tensor, *, eps: float | None, targeted: bool,
            generator: torch.Generator) -> torch.Tensor:
        assert eps is not None
        steps, step_size, random_start, restarts = self.schedule(eps)
        loss_fn = LOSSES[self.params["loss"]]
        x_adv = x.clone()
        todo = torch.arange(len(x), device=x.device)
        for restart in range(restarts):
            start = self.random_start(x[todo], eps, model.bounds, generator) if random_start else x[todo]
            todo, last = self.descend(model, x, y, x_adv, todo, start, eps, steps, step_size, loss_fn, targeted)
            if restart < restarts - 1:
                with torch.no_grad():
                    fooled = is_adversarial(model(last), y[todo], targeted)
                todo = todo[~fooled]
            if todo.numel() == 0:
                break
        return x_adv

    def descend(self, model: Classifier, x: torch.Tensor, y: torch.Tensor, x_adv: torch.Tensor, idx: torch.Tensor,
                xa: torch.Tensor, eps: float, steps: int, step_size: float, loss_fn: Any, targeted: bool
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """One run of ``steps`` steps on the samples ``idx``; writes into ``x_adv``.

        Returns the samples still not fooled and their last iterate.
        """
        for _ in range(steps):
            xa.requires_grad_(True)
            logits = model(xa)
            grad, = torch.autograd.grad(loss_fn(logits, y[idx], targeted).sum(), xa)
            xa = xa.detach()
            ys = y[idx]
            done = confirm(model, xa, is_adversarial(logits.detach(), ys, targeted),
                           lambda rows, exact: is_adversarial(exact, ys[rows], targeted))
            if bool(done.any()):
                x_adv[idx[done]] = xa[done]
                keep = ~done
                idx, xa, grad = idx[keep], xa[keep], grad[keep]
                if idx.numel() == 0:
                    break
            xa = self.project(xa + step_size * self.direction(grad), x[idx], eps, model.bounds)
        x_adv[idx] = xa
        return idx, xa

    def direction(self, grad: torch.Tensor) -> torch.Tensor:
        """Steepest-ascent direction of unit size in the attack's norm."""
        if self.norm == "linf":
            return grad.sign()
        norms = grad.flatten(1).norm(dim=1).clamp_min(1e-12)
        return grad / norms.view(-1, *([1] * (grad.ndim - 1)))

    def random_start(self, x: torch.Tensor, eps: float, bounds: tuple[float, float],
                     generator: torch.Generator) -> torch.Tensor:
        """A uniform sample from the eps ball around ``x`` (Linf: per coordinate; L2: in volume)."""
        if self.norm == "linf":
            noise = (torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) * 2 - 1) * eps
        else:
            direction = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            direction = direction / direction.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (x.ndim - 1)))
            radius = torch.rand(len(x), generator=generator, device=x.device, dtype=x.dtype) ** (1.0 / x[0].numel())
            noise = direction * (eps * radius).view(-1, *([1] * (x.ndim - 1)))
        return (x + noise).clamp(*bounds)
