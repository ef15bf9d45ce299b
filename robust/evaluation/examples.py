"""A few adversarial examples for the report: images as PNG data, labels and confidences."""

from __future__ import annotations

import base64
import io
from typing import Any

import torch

from robust.model import Classifier

EXAMPLES = 8


def build_examples(model: Classifier, run: Any) -> list[dict[str, Any]]:
    """Clean image, adversarial image and amplified perturbation of each picked sample, at its own size.

    Args:
        model: the evaluated classifier (re-run here for predictions and confidences).
        run: the evaluation's :class:`~robust.evaluation.outcome.Cascade`: its ``picks`` map a
            sample's index to (the attack that broke it, its clean input, its adversarial input),
            and its ``index`` and ``y`` give the labels.
    """
    if not run.picks:
        return []
    index = sorted(run.picks)
    label = dict(zip(run.index.tolist(), run.y.tolist()))
    clean = torch.stack([run.picks[i][1] for i in index]).to(model.device)
    adv = torch.stack([run.picks[i][2] for i in index]).to(model.device)
    with torch.no_grad(), model.evaluating():
        p_clean, p_adv = model(clean).softmax(1), model(adv).softmax(1)
    lo, hi = model.bounds
    delta = adv - clean
    scale = delta.flatten(1).abs().amax(1).clamp_min(1e-12).view(-1, *([1] * (delta.ndim - 1)))
    return [
        {"index": i, "attack": run.picks[i][0], "label": int(label[i]), "width": int(clean.shape[-1]),
         "height": int(clean.shape[-2]),
         "clean_prediction": int(p_clean[k].argmax()), "clean_confidence": round(float(p_clean[k].max()), 4),
         "adversarial_prediction": int(p_adv[k].argmax()), "adversarial_confidence": round(float(p_adv[k].max()), 4),
         "clean_png": _png((clean[k] - lo) / (hi - lo)), "adversarial_png": _png((adv[k] - lo) / (hi - lo)),
         "perturbation_png": _png(0.5 + 0.5 * delta[k] / scale[k])}
        for k, i in enumerate(index)
    ]


def _png(image: torch.Tensor) -> str | None:
    """Base64 PNG of a (C, H, W) image in [0, 1]; None for shapes PNG cannot hold."""
    if image.ndim != 3 or image.shape[0] not in (1, 3):
        return None
    from PIL import Image

    data = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    buffer = io.BytesIO()
    Image.fromarray(data[:, :, 0] if data.shape[2] == 1 else data).save(buffer, format="PNG", optimize=True)
    return base64.b64encode(buffer.getvalue()).decode("ascii")
