"""Fast gradient sign method (Goodfellow, Shlens and Szegedy 2015, arXiv:1412.6572).

One step of size eps along the sign of the loss gradient (Linf); with ``norm="l2"``
the fast gradient method, one step of L2 length eps along the gradient.

Example:
    >>> result = robust.create_attack("fgsm")(model, x, y, eps=0.3)
"""

from __future__ import annotations

from robust.gradient import LOSS, NORM, GradientAttack, Schedule


class FGSM(GradientAttack):
    """Single-step attack: the gradient base with one step of size eps and no random start.

    Args (keyword hyperparameters):
        norm: "linf" (FGSM) or "l2" (fast gradient method).
        loss: "ce" (cross-entropy), "margin" or "dlr".
    """

    name = "fgsm"
    parameters = (NORM, LOSS)

    def schedule(self, eps: float) -> Schedule:
        return Schedule(steps=1, step_size=eps, random_start=False)
