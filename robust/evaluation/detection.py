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


def detection_summary(detector: Any, x_clean: torch.Tensor, x_adv: torch.Tensor) -> dict[str, Any]:
    """Share of clean inputs flagged (false positives) and of adversarial inputs flagged (detections)."""
    if getattr(detector, "threshold", None) is None:
        raise RobustError("the detector must be calibrated on clean inputs before the evaluation")
    clean = detector.flags(x_clean) if len(x_clean) else torch.zeros(0, dtype=torch.bool)
    adv = detector.flags(x_adv) if len(x_adv) else torch.zeros(0, dtype=torch.bool)
    defense = getattr(detector, "defense", None)
    return {
        "name": getattr(defense, "name", type(detector).__name__),
        "params": dict(getattr(defense, "params", {})),
        "threshold": float(detector.threshold),
        "target_fpr": float(getattr(detector, "fpr", float("nan"))),
        "clean_n": len(x_clean), "false_positive_rate": float(clean.float().mean()) if len(clean) else None,
        "adversarial_n": len(x_adv), "detection_rate": float(adv.float().mean()) if len(adv) else None,
        "adaptive": False, "calibration": str(getattr(detector, "calibration", "clean inputs")),
    }
