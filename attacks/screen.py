"""The hopeless-point screen: which points a short APGD-DLR run leaves far from the boundary.

Discarding points that no short run brings near the boundary is the idea of A3 (Liu et al.
2022, "Practical Evaluation of Adversarial Robustness via Adaptive Auto Attack"). The DLR loss
of a correctly classified point lies in [-1, 0) whatever the scale of the logits (the gap to
the runner-up over the gap to the third), so one threshold serves every model.

A point's score is its best DLR loss over a 20-step APGD-DLR run from a random start on the
boundary of the eps ball. The start is drawn from a generator seeded by the point's own bytes,
so the score is a function of the model, the point, eps and the norm alone: the same in
whatever batch the point comes, in a resumed run, or in another attack of the same evaluation.
Inside :func:`robust.evaluate` scores are kept in the model's per-evaluation memo
(``Classifier.memo``), so APGD-T, FAB-T, Square and APGD's later restarts screen a point once.
"""

from __future__ import annotations

import hashlib

import torch

from robust.attack import clip, num_classes, per_sample
from robust.gradient import descend
from robust.losses import dlr
from robust.model import Classifier
from robust.params import Param

from .checkpoints import CheckpointStepper

SCREEN = Param("screen", float, None, "leave out the points whose best DLR loss over a 20-step APGD-DLR screen stays "
               "below -screen (hopeless points); none: attack every point", low=0, nullable=True)
SCREEN_STEPS = 20
RHO = 0.75  # APGD's default checkpoint threshold


def hopeless(model: Classifier, x: torch.Tensor, y: torch.Tensor, eps: float, norm: str,
             threshold: float | None) -> torch.Tensor:
    """Which points are not worth a long attack: their screen score lies below ``-threshold``.

    Costs at most 21 forward and backward passes per point not screened before in this
    evaluation; None (or fewer than 3 classes) keeps every point.
    """
    if threshold is None or len(x) == 0 or num_classes(model, x) < 3:
        return torch.zeros(len(x), dtype=torch.bool, device=x.device)
    return scores(model, x, y, eps, norm) < -float(threshold)


def scores(model: Classifier, x: torch.Tensor, y: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """Each point's best DLR loss over the screen's run (N,), from the memo where it was screened already."""
    keys = fingerprints(x, y)
    memo = model.memo.setdefault(("screen", float(eps), norm), {}) if model.memo is not None else {}
    missing = [i for i, key in enumerate(keys) if key not in memo]
    if missing:
        rows = torch.tensor(missing, device=x.device)
        found = _run(model, x[rows], y[rows], eps, norm, [keys[i] for i in missing])
        memo.update(zip((keys[i] for i in missing), found.tolist()))
    return torch.tensor([memo[key] for key in keys], device=x.device)


def fingerprints(x: torch.Tensor, y: torch.Tensor) -> list[bytes]:
    """A digest of each point's bytes and label."""
    flat = x.detach().reshape(len(x), -1).cpu().numpy()
    labels = y.detach().cpu().tolist()
    return [hashlib.blake2b(row.tobytes() + int(label).to_bytes(8, "little"), digest_size=16).digest()
            for row, label in zip(flat, labels)]


def _run(model: Classifier, x: torch.Tensor, y: torch.Tensor, eps: float, norm: str, keys: list[bytes]) -> torch.Tensor:
    start = _start(x, eps, norm, model.bounds, keys)
    stepper = CheckpointStepper(x, eps, norm, SCREEN_STEPS, RHO, model.bounds)
    with torch.enable_grad():
        run = descend(model, y, start, stepper, steps=SCREEN_STEPS, loss=dlr, trace=True)
    assert run.trace is not None
    return run.trace[-1]


def _start(x: torch.Tensor, eps: float, norm: str, bounds: tuple[float, float], keys: list[bytes]) -> torch.Tensor:
    """APGD's start (a random point on the boundary of the ball), drawn per point from its own digest."""
    noise = torch.stack([_draw(x[i], norm, key) for i, key in enumerate(keys)])
    flat = noise.flatten(1)
    size = flat.abs().amax(dim=1) if norm == "linf" else flat.norm(dim=1)
    return clip(x + eps * noise / per_sample(size.clamp_min(1e-12), x), bounds)


def _draw(row: torch.Tensor, norm: str, key: bytes) -> torch.Tensor:
    generator = torch.Generator(device=row.device).manual_seed(int.from_bytes(key[:8], "little") >> 1)
    if norm == "linf":
        return torch.rand(row.shape, generator=generator, device=row.device, dtype=row.dtype) * 2 - 1
    return torch.randn(row.shape, generator=generator, device=row.device, dtype=row.dtype)
