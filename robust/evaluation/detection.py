"""Detectors in an evaluation: how often they flag clean inputs and the adversarial examples found.

A detector has ``flags(x) -> bool tensor`` and, once calibrated, a ``threshold`` and the
target false-positive rate ``fpr`` (see ``defenses.feature_squeezing.SqueezeDetector``).
The attacks do not know about the detector here (a non-adaptive evaluation of it); the
report says so.
"""

from __future__ import annotations

from typing import Any

import torch

from robust.errors import RobustError


class Detection:
    """A detector's flags counted chunk by chunk: on clean inputs (false positives) and on adversarial ones."""

    def __init__(self, detector: Any) -> None:
        if getattr(detector, "threshold", None) is None:
            raise RobustError("the detector must be calibrated on clean inputs before the evaluation")
        self.detector = detector
        self.counts = [0, 0, 0, 0]  # clean flagged, clean seen, adversarial flagged, adversarial seen

    def add(self, x_clean: torch.Tensor, x_adv: torch.Tensor) -> None:
        for k, x in ((0, x_clean), (2, x_adv)):
            if len(x):
                self.counts[k] += int(self.detector.flags(x).sum())
                self.counts[k + 1] += len(x)

    def summary(self, split: bool = False) -> dict[str, Any]:
        """The rates over every chunk (``split``: over every process's chunks)."""
        counts = self.counts
        if split and torch.distributed.is_available() and torch.distributed.is_initialized():
            total = torch.tensor(counts, dtype=torch.long)
            torch.distributed.all_reduce(total)
            counts = total.tolist()
        defense = getattr(self.detector, "defense", None)
        return {
            "name": getattr(defense, "name", type(self.detector).__name__),
            "params": dict(getattr(defense, "params", {})),
            "threshold": float(self.detector.threshold),
            "target_fpr": float(getattr(self.detector, "fpr", float("nan"))),
            "clean_n": counts[1], "false_positive_rate": counts[0] / counts[1] if counts[1] else None,
            "adversarial_n": counts[3], "detection_rate": counts[2] / counts[3] if counts[3] else None,
            "adaptive": False, "calibration": str(getattr(self.detector, "calibration", "clean inputs")),
        }

