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

import torch

from robust.defense import TrainingDefense
from robust.gradient import SteepestAscent, descend, random_start
from robust.losses import ce
from robust.model import Classifier
from robust.params import Param

METHODS = ("pgd", "fgsm-rs")


class AdversarialTraining(TrainingDefense):
    """Adversarial training (Madry PGD, or fast FGSM with random start); produces a model."""

    name = "adversarial-training"
    parameters = (
        Param("method", str, "pgd", "pgd: Madry et al.; fgsm-rs: one step from a random start", choices=METHODS),
        Param("eps", float, 0.3, "Linf budget in input space", low=0),
        Param("steps", int, 7, "PGD steps per batch (pgd)", low=1),
        Param("step_size", float, None, "none: 2.5 * eps / steps (pgd), 1.25 * eps (fgsm-rs)", low=0, open_low=True,
              nullable=True),
        Param("eps_warmup", int, 0, "epochs over which eps ramps up linearly from 0", low=0),
    )

    def eps_at(self, epoch: float) -> float:
        """The training eps at a (fractional) epoch, ramped over ``eps_warmup`` epochs."""
        params = self.params
        warmup = params["eps_warmup"]
        return float(params["eps"]) * (min(1.0, epoch / warmup) if warmup else 1.0)

    def perturb(self, model: Classifier, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
        """Adversarial versions of a training batch (model in its current mode; Linf ball).

        The gradient base's loop without early exit: a random start in the ball, then
        ``steps`` signed-gradient steps of the cross-entropy (one for ``fgsm-rs``).
        """
        params = self.params
        if eps <= 0:
            return x
        steps = 1 if params["method"] == "fgsm-rs" else params["steps"]
        default = 1.25 * eps if params["method"] == "fgsm-rs" else 2.5 * eps / steps
        stepper = SteepestAscent(x, eps, "linf", float(params["step_size"] or default), model.bounds)
        start = random_start(x, eps, "linf", model.bounds, None)
        return descend(model, y, start, stepper, steps=steps, loss=ce, early_exit=False).x_adv
