"""Projected gradient descent, Linf and L2 (Madry et al. 2018, arXiv:1706.06083).

Shapes: ``x`` (N, C, H, W) in the model's bounds, ``y`` (N,) labels (targets when
``targeted``). ``eps`` and ``step_size`` are in input space.

Example:
    >>> pgd = robust.create_attack("pgd", steps=40, loss="margin")
    >>> result = pgd(model, x, y, eps=0.3)
    >>> result.success.float().mean()
"""

from __future__ import annotations

from robust.gradient import GradientAttack


class PGD(GradientAttack):
    """Projected gradient descent with random start, restarts and per-sample early exit.

    Args (keyword hyperparameters):
        norm: "linf" (signed-gradient steps) or "l2" (normalized-gradient steps).
        steps: gradient steps per restart (default 40).
        step_size: absolute step in input space (default 2.5 * eps / steps).
        random_start: start uniformly inside the eps ball (default True).
        restarts: independent runs; a sample already fooled is not restarted (default 1).
        loss: "ce" (cross-entropy), "margin" (CW logit margin) or "dlr" (Croce and Hein's
            scale-invariant margin).

    A sample leaves the batch at the first step where the model misclassifies it, and that
    point is kept, so later steps get cheaper. This is :class:`~robust.gradient.GradientAttack`
    as it is: the loop, the projection and the restarts live there.
    """

    name = "pgd"
