"""The harness's tensor operations: per-sample norms, projection onto the eps ball, clipping, judging.

Every attack, check and defense uses these, so a point is inside the ball, inside the bounds
and adversarial by one definition everywhere.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from robust.model import Classifier


def per_sample(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Reshape per-sample ``values`` (N,) to broadcast against ``like`` (N, ...)."""
    return values.view(-1, *([1] * (like.ndim - 1)))


def flat_norms(delta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample L2 and Linf norms of a batch of perturbations."""
    flat = delta.flatten(1)
    return flat.norm(p=2, dim=1), flat.abs().amax(dim=1)


def project(x_adv: torch.Tensor, x: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """Project ``x_adv`` onto the ``norm`` ball of radius ``eps`` around ``x``."""
    delta = x_adv - x
    if norm == "linf":
        return x + delta.clamp(-eps, eps)
    scale = (eps / delta.flatten(1).norm(dim=1).clamp_min(1e-12)).clamp(max=1.0)
    return x + delta * per_sample(scale, x)


def clip(x: torch.Tensor, bounds: tuple[float, float]) -> torch.Tensor:
    """Clip to the model's input bounds."""
    return x.clamp(bounds[0], bounds[1])


def is_adversarial(logits: torch.Tensor, y: torch.Tensor, targeted: bool) -> torch.Tensor:
    """Per-sample success: the target class (targeted) or any wrong class (untargeted)."""
    pred = logits.argmax(dim=1)
    return pred == y if targeted else pred != y


def confirm(model: Classifier, x: torch.Tensor, flagged: torch.Tensor,
            test: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Re-check, with an exact forward pass, the rows that a gradient pass flagged as successful.

    A gradient pass can be approximate (bf16 autocast, or logits averaged over EOT draws)
    while success is judged exactly; an attack that drops a point as fooled on the
    approximate logits would lose it. Where the model's gradient passes are exact this
    returns ``flagged`` unchanged, at no cost.

    Args:
        model: the attacked classifier.
        x: the inputs of the gradient pass.
        flagged: per-row bool from the gradient pass's logits.
        test: ``test(rows, logits)`` gives the success of ``rows`` from their exact logits.
    """
    if model.exact_gradient_pass or not bool(flagged.any()):
        return flagged
    rows = flagged.nonzero().squeeze(1)
    with torch.no_grad():
        exact = test(rows, model(x[rows].detach()))
    return flagged.index_put((rows,), exact)


@torch.no_grad()
def judge(model: Classifier, x_adv: torch.Tensor, y: torch.Tensor, targeted: bool, batch_size: int = 1024) -> torch.Tensor:
    """Re-run the model on ``x_adv`` and say which samples are adversarial."""
    with model.evaluating():
        parts = [is_adversarial(model(x_adv[i:i + batch_size]), y[i:i + batch_size], targeted)
                 for i in range(0, len(x_adv), batch_size)]
    return torch.cat(parts)
