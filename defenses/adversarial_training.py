"""Adversarial training: fit the model on adversarial examples of each training batch.

Two methods:

- ``pgd``: Madry et al. 2018 ("Towards Deep Learning Models Resistant to Adversarial
  Attacks", arXiv:1706.06083): a random start in the eps ball, then ``steps`` signed-gradient
  steps of ``step_size`` (default 2.5 * eps / steps), projected onto the ball.
- ``fgsm-rs``: Wong, Rice and Kolter 2020 ("Fast is better than free", arXiv:2001.03994):
  a uniform random start in the eps ball, then one signed-gradient step of ``step_size``
  (default 1.25 * eps), projected; about as cheap as two standard passes.

``eps`` is in input space (Linf). ``eps_warmup`` epochs ramp eps linearly from 0, which
helps small models on MNIST at eps 0.3. This defense produces a model: use
``robust train --defense adversarial-training:method=pgd`` or :func:`robust.training.train`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from robust.defense import Defense
from robust.model import Classifier

METHODS = ("pgd", "fgsm-rs")


class AdversarialTraining(Defense):
    """Adversarial training (Madry PGD, or fast FGSM with random start); produces a model."""

    name = "adversarial-training"
    kind = "training"
    defaults = {"method": "pgd", "eps": 0.3, "steps": 7, "step_size": None, "eps_warmup": 0}

    def validate(self, params: dict[str, Any]) -> None:
        self.check(params["method"] in METHODS, f"method must be one of {', '.join(METHODS)}, got {params['method']!r}")
        eps = params["eps"]
        self.check(isinstance(eps, (int, float)) and not isinstance(eps, bool) and 0 <= eps < float("inf"),
                   f"eps must be a finite number >= 0, got {eps!r}")
        steps = params["steps"]
        self.check(isinstance(steps, int) and not isinstance(steps, bool) and steps >= 1,
                   f"steps must be an integer >= 1, got {steps!r}")
        size = params["step_size"]
        self.check(size is None or (isinstance(size, (int, float)) and size > 0),
                   f"step_size must be a number > 0, got {size!r}")
        warmup = params["eps_warmup"]
        self.check(isinstance(warmup, int) and warmup >= 0, f"eps_warmup must be an integer >= 0, got {warmup!r}")

    def eps_at(self, epoch: float) -> float:
        """The training eps at a (fractional) epoch, ramped over ``eps_warmup`` epochs."""
        params = self.params
        warmup = params["eps_warmup"]
        return float(params["eps"]) * (min(1.0, epoch / warmup) if warmup else 1.0)

    def perturb(self, model: Classifier, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
        """Adversarial versions of a training batch (model in its current mode; Linf ball)."""
        params = self.params
        lo, hi = model.bounds
        if eps <= 0:
            return x
        steps = 1 if params["method"] == "fgsm-rs" else params["steps"]
        default = 1.25 * eps if params["method"] == "fgsm-rs" else 2.5 * eps / steps
        alpha = float(params["step_size"] or default)
        delta = torch.empty_like(x).uniform_(-eps, eps)
        delta = ((x + delta).clamp(lo, hi) - x)
        for _ in range(steps):
            delta.requires_grad_(True)
            loss = F.cross_entropy(model(x + delta), y)
            (grad,) = torch.autograd.grad(loss, delta)
            delta = (delta.detach() + alpha * grad.sign()).clamp(-eps, eps)
            delta = (x + delta).clamp(lo, hi) - x
        return (x + delta).detach()
