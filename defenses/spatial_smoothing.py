"""Spatial smoothing: a median filter over each channel (Xu, Evans and Qi 2018, arXiv:1704.01155).

The filter is a batched tensor op (unfold, then the k-th smallest value), with the
conventions of scipy's ``median_filter`` that ART uses: ``reflect`` padding (the edge
pixel repeated in mirror order) and, for an even window, the window reaching one pixel
further up and left and the upper of the two middle values.

Gradients: ``bpda`` (identity, default) or ``exact`` (autograd through the selected
median pixels).
"""

from __future__ import annotations

from typing import Any

import torch

from robust.defense import Defense


def _pad_symmetric(x: torch.Tensor, before: int, after: int, dim: int) -> torch.Tensor:
    """Mirror padding that repeats the edge (scipy's "reflect"), along one dimension."""
    parts = [x]
    if before:
        parts.insert(0, x.narrow(dim, 0, before).flip(dim))
    if after:
        parts.append(x.narrow(dim, x.shape[dim] - after, after).flip(dim))
    return torch.cat(parts, dim)


def median_filter(x: torch.Tensor, window: int) -> torch.Tensor:
    """Median of each ``window`` x ``window`` neighbourhood, per channel, for (N, C, H, W)."""
    if window <= 1:
        return x
    before, after = window // 2, (window - 1) - window // 2
    if min(x.shape[-2:]) < max(before, after):
        raise ValueError(f"a {window}x{window} window needs images of at least {max(before, after)} pixels per side")
    padded = _pad_symmetric(_pad_symmetric(x, before, after, 2), before, after, 3)
    patches = padded.unfold(2, window, 1).unfold(3, window, 1)
    flat = patches.reshape(*patches.shape[:4], window * window)
    return flat.kthvalue(window * window // 2 + 1, dim=-1).values


class SpatialSmoothing(Defense):
    """Median filter of the input (window 3 by default); BPDA gradients by default."""

    name = "spatial-smoothing"
    defaults = {"window": 3}
    differentiable = False
    gradient_modes = ("bpda", "exact")

    def validate(self, params: dict[str, Any]) -> None:
        window = params["window"]
        self.check(isinstance(window, int) and not isinstance(window, bool) and 2 <= window <= 15,
                   f"window must be an integer from 2 to 15, got {window!r}")

    def transform(self, x: torch.Tensor, bounds: tuple[float, float] = (0.0, 1.0)) -> torch.Tensor:
        return median_filter(x, self.params["window"])
