"""Feature squeezing (Xu, Evans and Qi 2018, "Feature Squeezing: Detecting Adversarial
Examples in Deep Neural Networks", arXiv:1704.01155).

As a preprocessing defense the input is squeezed before the model sees it: its colour
depth is reduced to ``bit_depth`` bits (``round(x * (2^b - 1)) / (2^b - 1)`` in unit
scale), then, when ``median`` is given, a median filter of that window is applied.

As a detector (:meth:`FeatureSqueezing.detector`), the model sees the original input and
an input is flagged when the L1 distance between the model's softmax on the original and
on a squeezed version exceeds a threshold; with a median window, the larger of the two
squeezers' distances counts (the paper's joint detector). The threshold is calibrated to
a false-positive rate (default 5%) on clean inputs.

Bit depth 1 on MNIST can be genuinely robust at eps 0.3: a pixel moves to the other side
of 0.5 only when it starts within eps of it, and most MNIST pixels are near 0 or 1. What
the adaptive (BPDA) attack finds is what the report states.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from robust.defense import PreprocessingDefense
from robust.errors import RobustError
from robust.model import Classifier
from robust.params import Param

from .spatial_smoothing import median_filter


def reduce_bits(x: torch.Tensor, bits: int, bounds: tuple[float, float] = (0.0, 1.0)) -> torch.Tensor:
    """Quantize ``x`` to ``2**bits`` evenly spaced levels across ``bounds``."""
    lo, hi = bounds
    levels = 2 ** bits - 1
    if (lo, hi) != (0.0, 1.0):
        return torch.round((x - lo) / (hi - lo) * levels) / levels * (hi - lo) + lo
    if levels == 1:
        return torch.round(x)
    if x.requires_grad:
        return torch.round(x * levels) / levels
    out = torch.empty_like(x)
    for i in range(0, len(x), 256):  # in cache-sized pieces, written in place
        piece = out[i:i + 256]
        torch.mul(x[i:i + 256], levels, out=piece)
        piece.round_().div_(levels)
    return out


class FeatureSqueezing(PreprocessingDefense):
    """Bit-depth reduction (default 1 bit) and an optional median filter; also a detector."""

    name = "feature-squeezing"
    parameters = (
        Param("bit_depth", int, 1, "bits of colour depth kept", low=1, high=16),
        Param("median", int, None, "median window after the bit reduction; none: no median", low=2, high=15,
              nullable=True),
        Param("fpr", float, 0.05, "the detector's target false-positive rate on clean inputs", low=0, high=1,
              open_low=True, open_high=True),
    )
    gradient_modes = ("bpda", "exact")

    def transform(self, x: torch.Tensor, bounds: tuple[float, float] = (0.0, 1.0)) -> torch.Tensor:
        params = self.params
        out = reduce_bits(x, params["bit_depth"], bounds)
        return median_filter(out, params["median"]) if params["median"] else out

    def squeezers(self, bounds: tuple[float, float]) -> list[Callable[[torch.Tensor], torch.Tensor]]:
        """The detector's squeezers: bit depth, and the median filter when a window is given."""
        params = self.params
        found = [lambda x: reduce_bits(x, params["bit_depth"], bounds)]
        if params["median"]:
            found.append(lambda x: median_filter(x, params["median"]))
        return found

    def detector(self, model: Classifier) -> SqueezeDetector:
        """A detector around ``model`` (uncalibrated: call :meth:`SqueezeDetector.calibrate`)."""
        return SqueezeDetector(model, self)


class SqueezeDetector:
    """Flags inputs whose prediction moves too much under squeezing (L1 between softmaxes)."""

    def __init__(self, model: Classifier, defense: FeatureSqueezing) -> None:
        self.model = model
        self.defense = defense
        self.fpr: float = defense.params["fpr"]
        self.threshold: float | None = None

    @torch.no_grad()
    def scores(self, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """Per-input detection score: the largest L1 distance over the squeezers."""
        squeezers = self.defense.squeezers(self.model.bounds)
        out = []
        with self.model.evaluating():
            for i in range(0, len(x), batch_size):
                part = x[i:i + batch_size].to(self.model.device)
                base = self.model(part).softmax(1)
                dist = [(self.model(s(part)).softmax(1) - base).abs().sum(1) for s in squeezers]
                out.append(torch.stack(dist).amax(0).cpu())
        return torch.cat(out) if out else torch.empty(0)

    def calibrate(self, x_clean: torch.Tensor) -> float:
        """Set the threshold so that a share ``fpr`` of ``x_clean`` is flagged; return it."""
        if len(x_clean) < 20:
            raise RobustError(f"calibrating the detector needs at least 20 clean inputs, got {len(x_clean)}")
        self.threshold = float(torch.quantile(self.scores(x_clean).double(), 1 - self.fpr))
        return self.threshold

    def flags(self, x: torch.Tensor) -> torch.Tensor:
        """Per-input bool: flagged as adversarial."""
        if self.threshold is None:
            raise RobustError("the detector is not calibrated: call calibrate() on clean inputs first")
        return self.scores(x) > self.threshold
