"""Random search in the eps ball: a weak baseline attack, shipped as a third-party plugin.

Draws ``tries`` uniform points from the Linf ball (or points on the L2 sphere) around each
input and keeps the first that the model misclassifies. Gradient-free, so it also probes
models whose gradients are masked.

Example:
    >>> attack = robust.create_attack("noise", tries=20)
    >>> result = attack(model, x, y, eps=0.3)
"""

from __future__ import annotations

from typing import Any

import torch

from robust import Attack, Classifier
from robust.attack import clip, is_adversarial


class RandomNoise(Attack):
    """Uniform random search in the eps ball; keeps each sample's first adversarial draw.

    Args (keyword hyperparameters):
        norm: "linf" (uniform in the cube) or "l2" (uniform on the sphere of radius eps).
        tries: random draws per sample (default 10).
    """

    name = "noise"
    defaults = {"norm": "linf", "tries": 10}

    def validate(self, params: dict[str, Any]) -> None:
        self.check(isinstance(params["tries"], int) and params["tries"] >= 1, f"tries must be an integer >= 1, got {params['tries']!r}")

    def run(self, model: Classifier, x: torch.Tensor, y: torch.Tensor, *, eps: float | None, targeted: bool,
            generator: torch.Generator) -> torch.Tensor:
        assert eps is not None
        x_adv = x.clone()
        todo = torch.ones(len(x), dtype=torch.bool, device=x.device)
        for _ in range(self.params["tries"]):
            noise = self.draw(x, eps, generator)
            candidate = clip(x + noise, model.bounds)
            with torch.no_grad():
                fooled = is_adversarial(model(candidate), y, targeted) & todo
            x_adv[fooled] = candidate[fooled]
            todo &= ~fooled
        return x_adv

    def draw(self, x: torch.Tensor, eps: float, generator: torch.Generator) -> torch.Tensor:
        noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) * 2 - 1
        if self.norm == "l2":
            norms = noise.flatten(1).norm(dim=1).clamp_min(1e-12)
            noise = noise / norms.view(-1, *([1] * (x.ndim - 1)))
        return noise * eps
