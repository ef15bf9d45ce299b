"""Random search in the eps ball: a weak baseline attack, shipped as a third-party plugin.

Draws ``tries`` uniform points from the Linf ball (or points on the L2 sphere) around each
input and keeps the first that the model misclassifies. Gradient-free, so it also probes
models whose gradients are masked.

Example:
    >>> attack = robust.create_attack("noise", tries=20)
    >>> result = attack(model, x, y, eps=0.3)
"""

from __future__ import annotations

import torch

from robust import Attack, Classifier, Param
from robust.attack import clip, is_adversarial, per_sample


class RandomNoise(Attack):
    """Uniform random search in the eps ball; keeps each sample's first adversarial draw.

    Args (keyword hyperparameters):
        norm: "linf" (uniform in the cube) or "l2" (uniform on the sphere of radius eps).
        tries: random draws per sample (default 10).
    """

    name = "noise"
    parameters = (
        Param("norm", str, "linf", "linf: uniform in the cube; l2: uniform on the sphere", choices=("linf", "l2")),
        Param("tries", int, 10, "random draws per sample", low=1),
    )

    def run(self, model: Classifier, x: torch.Tensor, y: torch.Tensor, *, eps: float | None, targeted: bool,
            generator: torch.Generator) -> torch.Tensor:
        assert eps is not None
        x_adv = x.clone()
        todo = torch.ones(len(x), dtype=torch.bool, device=x.device)
        for _ in range(self.params["tries"]):
            idx = todo.nonzero().squeeze(1)
            if idx.numel() == 0:  # never call the model on an empty batch
                break
            candidate = clip(x[idx] + self.draw(x[idx], eps, generator), model.bounds)
            with torch.no_grad():
                fooled = is_adversarial(model(candidate), y[idx], targeted)
            x_adv[idx[fooled]] = candidate[fooled]
            todo[idx[fooled]] = False
        return x_adv

    def draw(self, x: torch.Tensor, eps: float, generator: torch.Generator) -> torch.Tensor:
        noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) * 2 - 1
        if self.norm == "l2":
            noise = noise / per_sample(noise.flatten(1).norm(dim=1).clamp_min(1e-12), x)
        return noise * eps
