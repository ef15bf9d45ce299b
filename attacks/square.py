"""Square attack, Linf and L2 (Andriushchenko, Croce, Flammarion and Hein 2020, arXiv:1912.00049).

A score-based black-box attack: a random search that only reads the model's logits. Each
iteration proposes, per sample, a change of the current point inside one random square
window (two for L2) and keeps it when the loss improves. The window side shrinks on a fixed
schedule of the iteration number (AutoAttack's standard version, without rescaling the
schedule to the budget).

Shapes: ``x`` (N, C, H, W) in the model's bounds, ``y`` (N,) labels (targets when
``targeted``). ``eps`` is in input space. Flat inputs (N, D) are searched as one row of D
pixels (windows of one feature).

Example:
    >>> square = robust.create_attack("square", norm="linf", queries=5000)
    >>> result = square(model, x, y, eps=8 / 255, seed=0)
    >>> result.success.float().mean(), result.queries.float().mean()
"""

from __future__ import annotations

import math

import torch

from robust.attack import Attack, clip, confirm, is_adversarial, num_classes, per_sample
from robust.errors import RobustError
from robust.losses import LOSSES, dlr
from robust.model import Classifier
from robust.params import NORMS, Param

from .screen import SCREEN, hopeless
from .square_l2 import l2_size, l2_start, l2_step, random_corners, random_signs, window_masks

SCHEDULE = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)  # p halves after each of these iterations
# (share of a run's budget, share of ``prune``): after 10% of the queries a point whose best DLR loss is
# below -prune is given up, after 20% one below -0.8 prune, after 40% one below -0.6 prune
PRUNE_AT = ((0.1, 1.0), (0.2, 0.8), (0.4, 0.6))


def fraction(p_init: float, iteration: int) -> float:
    """The fraction p of pixels a window covers at ``iteration`` (0-based): ``p_init`` halved
    once for every step of :data:`SCHEDULE` already passed."""
    return p_init / 2 ** sum(iteration > step for step in SCHEDULE)


def linf_size(p: float, height: int, width: int) -> int:
    """Side of the Linf windows for fraction ``p``: at least 1, at most the image."""
    return min(max(int(round(math.sqrt(p * height * width))), 1), height, width)


def linf_start(x: torch.Tensor, eps: float, bounds: tuple[float, float], generator: torch.Generator) -> torch.Tensor:
    """The Linf starting points: vertical stripes, ``x +- eps`` per sample, channel and column."""
    n, c, _, w = x.shape
    return clip(x + eps * random_signs((n, c, 1, w), generator, x), bounds)


def linf_step(x: torch.Tensor, best: torch.Tensor, eps: float, size: int, bounds: tuple[float, float],
              generator: torch.Generator) -> torch.Tensor:
    """One Linf proposal per sample: a random window of ``best`` set to ``x +- eps`` (a sign per channel).

    The reference adds ``+-2 eps`` to the window and projects onto the ball, which lands on the
    same vertex ``x +- eps`` from any point of the ball.
    """
    n, c, h, w = x.shape
    mask = window_masks(*random_corners(n, size, h, w, generator, x.device), size, h, w)
    return torch.where(mask, clip(x + eps * random_signs((n, c, 1, 1), generator, x), bounds), best)


def as_images(x: torch.Tensor) -> torch.Tensor:
    """``x`` as (N, C, H, W): images as they are, flat inputs (N, D) as (N, 1, 1, D)."""
    if x.ndim == 4:
        return x
    if x.ndim == 2:
        return x[:, None, None, :]
    raise RobustError(f"attack 'square' needs images (N, C, H, W) or flat inputs (N, D), got shape {tuple(x.shape)}")


class Square(Attack):
    """Square attack: random search over square windows, with per-sample early exit.

    Andriushchenko, Croce, Flammarion and Hein, "Square Attack: a query-efficient black-box
    adversarial attack via random search", ECCV 2020 (arXiv:1912.00049). Only ``model(x)``
    (logits, no gradients) is used.

    Linf starts from vertical stripes ``x +- eps`` and each proposal sets one random window to
    ``x +- eps`` with a sign per channel. L2 starts from a grid of signed two-lobe tiles
    scaled to norm eps, and each proposal moves the mass of two random windows into the first
    with a fresh two-lobe pattern (see :mod:`robust.attacks.square_l2`). The window covers a
    fraction p of the pixels: ``p_init`` halved after iterations 10, 50, 200, 500, 1000,
    2000, 4000, 6000 and 8000. A proposal is kept when the loss improves or the point is
    fooled; a fooled point leaves the batch.

    Args (keyword hyperparameters):
        norm: "linf" or "l2".
        queries: model queries per sample, everything included (default 5000): one to
            check the clean input (a misclassified one stops there), then per restart one
            for the starting point and one per proposal.
        p_init: fraction of the pixels the first windows cover (default 0.8).
        restarts: runs from fresh starting points for the samples not yet fooled; they
            share the budget evenly (default 1).
        loss: "margin" (best other logit minus the true one) or "ce" (cross-entropy),
            untargeted. Targeted runs always ascend minus the cross-entropy of the target.
        screen: leave out the points a 20-step APGD-DLR run leaves with a DLR loss below
            ``-screen`` (:func:`robust.attacks.screen.hopeless`; default None: search every point).
            The screen uses gradients only to choose points; it never breaks one for Square.
        prune: stop searching the points whose best point is still far from the boundary:
            a DLR loss below ``-prune`` after 10% of a run's queries, below ``-0.8 prune``
            after 20%, below ``-0.6 prune`` after 40% (default None: never). The search's own
            queries decide, so no gradient is needed; a point the search keeps bringing closer
            keeps its whole budget. Untargeted, 3 classes or more.

    Returns ``(x_adv, queries)``: ``x_adv`` (N, C, H, W) holds each sample's first fooling
    point, or its best-loss point over the restarts; ``queries`` (N,) long, at most
    ``queries`` per sample.
    """

    name = "square"
    needs_eps = True
    gradient_free = True
    parameters = (
        Param("norm", str, "linf", "linf: windows set to x +- eps; l2: mass moved between windows", choices=NORMS),
        Param("queries", int, 5000, "model queries per sample (forward passes of it), clean check included", low=1),
        Param("p_init", float, 0.8, "fraction of the pixels the first windows cover", low=0, high=1, open_low=True),
        Param("restarts", int, 1, "runs from fresh starts for the samples not yet fooled; they share the budget",
              low=1),
        Param("loss", str, "margin", "untargeted loss: margin or ce (targeted runs use cross-entropy)",
              choices=("margin", "ce")),
        SCREEN,
        Param("prune", float, None, "stop searching the points whose best DLR loss is still below -prune after 10% "
              "of the queries (-0.8 prune after 20%, -0.6 prune after 40%); none: search every point to the end",
              low=0, nullable=True),
    )

    @torch.no_grad()
    def run(self, model: Classifier, x: torch.Tensor, y: torch.Tensor, *, eps: float | None, targeted: bool,
            generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        assert eps is not None  # needs_eps: the harness refuses a call without one
        images = as_images(x)
        queries = torch.ones(len(x), dtype=torch.long, device=x.device)
        score, fooled, _ = self.evaluate(model, images, y, targeted, x.shape[1:])
        score.fill_(-math.inf)  # any restart's point beats the clean input
        x_adv = images.clone()
        skip = hopeless(model, x, y, eps, self.norm, None if targeted else self.params["screen"])
        budget, restarts = self.params["queries"] - 1, self.params["restarts"]
        for r in range(restarts):
            share = budget // restarts + (r < budget % restarts)
            if eps == 0 or share == 0 or bool((fooled | skip).all()):
                break
            idx = (~fooled & ~skip).nonzero().squeeze(1)
            best, value, hit, used = self.search(model, images[idx], y[idx], eps, targeted, generator, share,
                                                 x.shape[1:])
            better = hit | (value > score[idx])
            x_adv[idx] = torch.where(per_sample(better, best), best, x_adv[idx])
            score[idx] = torch.where(better, value, score[idx])
            fooled[idx], queries[idx] = hit, queries[idx] + used
        return x_adv.reshape(x.shape), queries

    def search(self, model: Classifier, x: torch.Tensor, y: torch.Tensor, eps: float, targeted: bool,
               generator: torch.Generator, budget: int, shape: torch.Size
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One run on images ``x`` (n, C, H, W) with ``budget`` >= 1 queries per sample.

        Returns:
            The best points (n, C, H, W), their losses (n,), which are fooled (n,) and the
            queries each sample used (n,).
        """
        h, w = x.shape[2:]
        l2 = self.norm == "l2"
        bounds = model.bounds
        best = (l2_start if l2 else linf_start)(x, eps, bounds, generator)
        score, fooled, near = self.evaluate(model, best, y, targeted, shape)
        used = torch.ones(len(x), dtype=torch.long, device=x.device)
        searching = ~fooled
        prune = self.pruning(targeted, model, x)
        levels = {} if prune is None else {max(int(share * budget), 1): -level * prune for share, level in PRUNE_AT}
        for it in range(budget - 1):
            if it + 1 in levels:
                searching &= near >= levels[it + 1]
            if not bool(searching.any()):
                break
            idx = searching.nonzero().squeeze(1)
            p = fraction(float(self.params["p_init"]), it)
            if l2:
                cand = l2_step(x[idx], best[idx], eps, l2_size(p, h, w), bounds, generator)
            else:
                cand = linf_step(x[idx], best[idx], eps, linf_size(p, h, w), bounds, generator)
            value, hit, closeness = self.evaluate(model, cand, y[idx], targeted, shape)
            improved = value > score[idx]
            best[idx] = torch.where(per_sample(improved | hit, cand), cand, best[idx])
            score[idx] = torch.where(improved, value, score[idx])
            near[idx] = torch.where(improved, closeness, near[idx])
            fooled[idx], used[idx] = hit, used[idx] + 1
            searching[idx] = ~hit
        return best, score, fooled, used

    def pruning(self, targeted: bool, model: Classifier, x: torch.Tensor) -> float | None:
        """The DLR level below which a point is given up at the checkpoints, or None (no pruning)."""
        prune = self.params["prune"]
        if prune is None or targeted or num_classes(model, x) < 3:
            return None
        return float(prune)

    def evaluate(self, model: Classifier, xs: torch.Tensor, y: torch.Tensor, targeted: bool, shape: torch.Size
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One batched query: the loss to ascend (n,), which rows are adversarial (n,) and their DLR loss (n,).

        A gradient-free pass is the model's judging pass (fp32 even on a bf16 Classifier), so
        the loss and the flags come from the logits success is judged on. The flags still go
        through :func:`~robust.ops.confirm`, which re-runs the flagged rows only on a model whose
        gradient passes are approximate; that re-check is not counted as a query. The DLR loss
        (what ``prune`` reads) is 0 where the model has fewer than 3 classes or the run is targeted.
        """
        inputs = xs.reshape(-1, *shape)
        logits = model(inputs)
        if targeted:
            value = LOSSES["ce"](logits, y, True)
        else:
            value = LOSSES[self.params["loss"]](logits, y, False)
        hit = confirm(model, inputs, is_adversarial(logits, y, targeted),
                      lambda rows, exact: is_adversarial(exact, y[rows], targeted))
        closeness = dlr(logits.float(), y) if not targeted and logits.shape[1] >= 3 else torch.zeros_like(value)
        return value, hit, closeness
