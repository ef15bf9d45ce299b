"""Per-sample losses that attacks ascend: cross-entropy, the logit margin and DLR.

Every loss maps logits (N, K) and labels (N,) to a per-sample loss (N,) that grows as the
attack progresses. With ``targeted=True``, ``y`` holds the target classes and the loss grows
as the model moves towards them.

- ``ce``: cross-entropy (Goodfellow et al. 2015; Madry et al. 2018).
- ``margin``: best other logit minus the logit of ``y`` (Carlini and Wagner 2017); > 0 once
  the sample is misclassified.
- ``dlr``: the Difference of Logits Ratio of Croce and Hein 2020 (arXiv:2003.01690), the
  margin divided by the spread of the top logits: invariant to shifting and scaling the
  logits, so a saturated softmax does not hide the gradient.
- :func:`targeted_dlr`: AutoAttack's targeted DLR, which needs both the true labels and the targets.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from robust.errors import RobustError

LossFn = Callable[[torch.Tensor, torch.Tensor, bool], torch.Tensor]
AimedLossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]  # (logits, y, aim)
DLR_EPS = 1e-12  # keeps the DLR denominator positive where the top logits tie


def ce(logits: torch.Tensor, y: torch.Tensor, targeted: bool = False) -> torch.Tensor:
    """Per-sample cross-entropy to ascend (its negative when targeted)."""
    loss = F.cross_entropy(logits, y, reduction="none")
    return -loss if targeted else loss


def _own_and_other(logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The logit of ``y`` and the largest other logit, per sample."""
    own = logits.gather(1, y[:, None]).squeeze(1)
    other = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf")).amax(dim=1)
    return own, other


def margin(logits: torch.Tensor, y: torch.Tensor, targeted: bool = False) -> torch.Tensor:
    """Per-sample logit margin to ascend: best other class minus ``y`` (``y`` minus best other when targeted)."""
    own, other = _own_and_other(logits, y)
    return own - other if targeted else other - own


def _need_classes(logits: torch.Tensor, least: int, what: str) -> None:
    if logits.shape[1] < least:
        raise RobustError(f"the {what} loss needs a model with at least {least} classes, got {logits.shape[1]}")


def dlr(logits: torch.Tensor, y: torch.Tensor, targeted: bool = False) -> torch.Tensor:
    """Difference of Logits Ratio: the margin over ``z_(1) - z_(3)`` (sorted logits, largest first).

    Untargeted: ``(max_{i != y} z_i - z_y) / (z_(1) - z_(3))``. Targeted (``y`` holds targets):
    ``(z_y - max_{i != y} z_i) / (z_(1) - z_(3))``. Needs at least 3 classes.
    """
    _need_classes(logits, 3, "DLR")
    top = logits.topk(3, dim=1).values
    return margin(logits, y, targeted) / (top[:, 0] - top[:, 2] + DLR_EPS)


def targeted_dlr(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """AutoAttack's targeted DLR to ascend: ``(z_t - z_y) / (z_(1) - (z_(3) + z_(4)) / 2)``.

    Args:
        logits: (N, K) with K >= 4.
        y: the true labels (N,).
        target: the target classes (N,), each different from its ``y``.
    """
    _need_classes(logits, 4, "targeted DLR")
    top = logits.topk(4, dim=1).values
    gap = logits.gather(1, target[:, None]).squeeze(1) - logits.gather(1, y[:, None]).squeeze(1)
    return gap / (top[:, 0] - (top[:, 2] + top[:, 3]) / 2 + DLR_EPS)


LOSSES: dict[str, LossFn] = {"ce": ce, "margin": margin, "dlr": dlr}
