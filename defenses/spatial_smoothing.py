"""Spatial smoothing: a median filter over each channel (Xu, Evans and Qi 2018, arXiv:1704.01155).

The filter is a batched tensor op: for 2x2 and 3x3 windows elementwise minima and maxima
over shifted views (for 3x3, each column of three is sorted once and shared by its three
windows), for larger ones unfold and the k-th smallest value; on the CPU it runs a few dozen
images at a time so that the views stay in cache. It follows the conventions of scipy's
``median_filter`` that ART uses: ``reflect`` padding (the edge
pixel repeated in mirror order) and, for an even window, the window reaching one pixel
further up and left and the upper of the two middle values.

Gradients: ``bpda`` (identity, default) or ``exact`` (autograd through the selected
median pixels).
"""

from __future__ import annotations

import torch

from robust.defense import PreprocessingDefense
from robust.params import Param


def _pad_symmetric(x: torch.Tensor, before: int, after: int, dim: int) -> torch.Tensor:
    """Mirror padding that repeats the edge (scipy's "reflect"), along one dimension."""
    parts = [x]
    if before:
        parts.insert(0, x.narrow(dim, 0, before).flip(dim))
    if after:
        parts.append(x.narrow(dim, x.shape[dim] - after, after).flip(dim))
    return torch.cat(parts, dim)


CHUNK = 128  # images per step on the CPU


def _views(padded: torch.Tensor, window: int, size: tuple[int, int]) -> list[torch.Tensor]:
    h, w = size
    return [padded[..., i:i + h, j:j + w] for i in range(window) for j in range(window)]


def _median3(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    return torch.maximum(torch.minimum(a, b), torch.minimum(torch.maximum(a, b), c))


def _median_small(padded: torch.Tensor, window: int, size: tuple[int, int]) -> torch.Tensor:
    """2x2: the upper middle of four. 3x3: sort each column of three once, then the median is the
    median of (largest column minimum, median of column medians, smallest column maximum)."""
    h, w = size
    if window == 2:
        v = _views(padded, window, size)
        return torch.maximum(torch.minimum(torch.maximum(v[0], v[1]), torch.maximum(v[2], v[3])),
                             torch.maximum(torch.minimum(v[0], v[1]), torch.minimum(v[2], v[3])))
    a, b, c = padded[..., 0:h, :], padded[..., 1:h + 1, :], padded[..., 2:h + 2, :]
    low, high = torch.minimum(a, b), torch.maximum(a, b)
    low, c = torch.minimum(low, c), torch.maximum(low, c)
    mid, high = torch.minimum(high, c), torch.maximum(high, c)
    lows = torch.maximum(torch.maximum(low[..., 0:w], low[..., 1:w + 1]), low[..., 2:w + 2])
    highs = torch.minimum(torch.minimum(high[..., 0:w], high[..., 1:w + 1]), high[..., 2:w + 2])
    return _median3(lows, _median3(mid[..., 0:w], mid[..., 1:w + 1], mid[..., 2:w + 2]), highs)


def _median(x: torch.Tensor, window: int) -> torch.Tensor:
    before, after = window // 2, (window - 1) - window // 2
    padded = _pad_symmetric(_pad_symmetric(x, before, after, 2), before, after, 3)
    if window <= 3:
        return _median_small(padded, window, (x.shape[2], x.shape[3]))
    patches = padded.unfold(2, window, 1).unfold(3, window, 1)
    flat = patches.reshape(*patches.shape[:4], window * window)
    return flat.kthvalue(window * window // 2 + 1, dim=-1).values


def median_filter(x: torch.Tensor, window: int) -> torch.Tensor:
    """Median of each ``window`` x ``window`` neighbourhood, per channel, for (N, C, H, W)."""
    if window <= 1:
        return x
    if min(x.shape[-2:]) < window // 2:
        raise ValueError(f"a {window}x{window} window needs images of at least {window // 2} pixels per side")
    if x.device.type != "cpu" or len(x) <= CHUNK:
        return _median(x, window)
    return torch.cat([_median(x[i:i + CHUNK], window) for i in range(0, len(x), CHUNK)])


class SpatialSmoothing(PreprocessingDefense):
    """Median filter of the input (window 3 by default); BPDA gradients by default."""

    name = "spatial-smoothing"
    parameters = (Param("window", int, 3, "side of the square median window, in pixels", low=2, high=15),)
    gradient_modes = ("bpda", "exact")

    def transform(self, x: torch.Tensor, bounds: tuple[float, float] = (0.0, 1.0)) -> torch.Tensor:
        return median_filter(x, self.params["window"])
