"""Fast gradient sign method (Goodfellow, Shlens and Szegedy 2015, arXiv:1412.6572).

One step of size eps along the sign of the loss gradient (Linf); with ``norm="l2"``
the fast gradient method, one step of L2 length eps along the gradient.

Example:
    >>> result = robust.create_attack("fgsm")(model, x, y, eps=0.3)
"""

from __future__ import annotations

from typing import Any

from attacks.pgd import PGD


class FGSM(PGD):
    """Single-step attack: PGD with one step of size eps and no random start.

    Args (keyword hyperparameters):
        norm: "linf" (FGSM) or "l2" (fast gradient method).
        loss: "ce" (cross-entropy) or "margin".
    """

    name = "fgsm"
    defaults = {"norm": "linf", "loss": "ce"}

    def validate(self, params: dict[str, Any]) -> None:
        self.check(params["loss"] in ("ce", "margin"), f"loss must be ce or margin, got {params['loss']!r}")

    def schedule(self, eps: float) -> tuple[int, float, bool, int]:
        return 1, eps, False, 1
