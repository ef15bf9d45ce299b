"""The harness's tensor operations: per-sample norms, projection onto the eps ball, clipping, judging.

Every attack, check and defense uses these, so a point is inside the ball, inside the bounds
and adversarial by one definition everywhere.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from robust.model import Classifier
from robust.params import ALL_NORMS, Norm


def per_sample(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Reshape per-sample ``values`` (N,) to broadcast against ``like`` (N, ...)."""
    return values.view(-1, *([1] * (like.ndim - 1)))


def lp_norms(delta: torch.Tensor, norm: str) -> torch.Tensor:
    """Per-sample ``norm`` of a batch (N, ...): "linf", "l2", "l1", or "l0" (the number of changed
    components, as a float)."""
    flat = delta.flatten(1)
    if norm == "linf":
        return flat.abs().amax(dim=1)
    if norm == "l1":
        return flat.abs().sum(dim=1)
    if norm == "l0":
        return (flat != 0).sum(dim=1).to(flat.dtype)
    return flat.norm(dim=1)


def flat_norms(delta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample L2 and Linf norms of a batch of perturbations."""
    flat = delta.flatten(1)
    return flat.norm(p=2, dim=1), flat.abs().amax(dim=1)


def sizes(delta: torch.Tensor) -> dict[Norm, torch.Tensor]:
    """Per-sample size of a batch of perturbations in every norm the harness measures."""
    return {norm: lp_norms(delta, norm) for norm in ALL_NORMS}


def largest(norm: str, span: float, numel: int) -> float:
    """The size in ``norm`` of a perturbation across the whole box: ``span`` (hi - lo) on each of
    ``numel`` components. A ball of this radius holds every input."""
    return {"linf": span, "l2": span * numel ** 0.5, "l1": span * numel, "l0": float(numel)}[norm]


def project(x_adv: torch.Tensor, x: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """Project ``x_adv`` onto the ``norm`` ball of radius ``eps`` around ``x``."""
    if norm == "linf":
        return x + (x_adv - x).clamp(-eps, eps)
    return x + shrink(x_adv - x, torch.full((len(x),), float(eps), device=x.device, dtype=x.dtype), norm)


def shrink(delta: torch.Tensor, radius: torch.Tensor, norm: str) -> torch.Tensor:
    """Euclidean projection of each perturbation (N, ...) onto its own ``norm`` ball of ``radius`` (N,).

    Linf clamps, L2 scales down, L1 soft-thresholds by the sort-based rule of Duchi et al.
    2008 ("Efficient Projections onto the l1-Ball for Learning in High Dimensions", ICML), and
    L0 keeps the ``floor(radius)`` components of largest magnitude.
    """
    r = per_sample(radius, delta)
    if norm == "linf":
        return torch.maximum(torch.minimum(delta, r), -r)
    if norm == "l2":
        return delta * (r / per_sample(delta.flatten(1).norm(dim=1).clamp_min(1e-12), delta)).clamp(max=1.0)
    flat = delta.flatten(1)
    if norm == "l1":
        return _l1_ball(flat, radius).view_as(delta)
    count = (radius + 1e-6).floor().clamp(0, flat.shape[1]).long()
    most = int(count.max()) if len(count) else 0
    top = flat.abs().topk(most, dim=1).indices
    ranked = torch.arange(most, device=flat.device) < count.unsqueeze(1)  # (n, most): the first count of each row
    keep = torch.zeros_like(flat, dtype=torch.bool).scatter_(1, top, ranked)
    return torch.where(keep, flat, torch.zeros_like(flat)).view_as(delta)


def _l1_ball(flat: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """Rows (n, d) projected onto their L1 balls: ``sign * max(|v| - theta, 0)``, with theta the
    smallest threshold that brings the row's L1 norm down to its radius. Only the rows outside
    their balls are sorted; the others come back as they are."""
    outside = flat.abs().sum(dim=1) > radius
    if not bool(outside.any()):
        return flat
    rows = outside.nonzero().squeeze(1)
    size, r = flat[rows].abs(), radius[rows].unsqueeze(1)
    top = size.sort(dim=1, descending=True).values
    count = torch.arange(1, flat.shape[1] + 1, device=flat.device, dtype=flat.dtype)
    thresholds = (top.cumsum(dim=1) - r) / count
    kept = (top > thresholds).sum(dim=1, keepdim=True).clamp_min(1)
    theta = thresholds.gather(1, kept - 1).clamp_min(0)
    return flat.index_put((rows,), flat[rows].sign() * (size - theta).clamp_min(0))


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
