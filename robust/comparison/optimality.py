"""Optimality of minimal-norm attacks: how close each run comes to the best distance found per point.

AttackBench (Cinà et al., AAAI 2025) scores an attack by the area under its robust-accuracy
curve: ``RA(d)``, the share of points for which the attack found no adversarial example
closer than ``d``. The reference is the curve of the per-point best distance ``d*`` over every
attack and framework of the run; the worst possible curve finds nothing and stays at the clean
accuracy. With ``D`` the largest finite ``d*`` and distances clipped at ``D``:

    optimality = (clean * D - area(attack)) / (clean * D - area(best))

1 means the attack found the best distance for every point, 0 that it found nothing closer than
``D``. The area under a step curve is exact here: ``area = mean(min(d_i, D))`` over all points,
misclassified ones at distance 0 (they cancel), so the score is

    sum_i (D - min(d_i, D)) / sum_i (D - d*_i)    over the correctly classified points.

Only minimal-norm attacks are scored (DeepFool, CW, Boundary, FAB, DDN, FMN): a fixed-budget
attack stops at eps and says nothing about smaller distances.
"""

from __future__ import annotations

import math
from typing import Any

import torch

CURVE_POINTS = 64  # distances at which each curve is stored for the report


def distances(found: torch.Tensor) -> torch.Tensor:
    """Per-point distances with NaN (nothing found) as +inf."""
    return torch.where(torch.isnan(found), torch.full_like(found, math.inf), found).double()


def best(per_run: list[torch.Tensor]) -> torch.Tensor:
    """The per-point smallest distance over the runs (inf where no run found one)."""
    return torch.stack(per_run).amin(dim=0)


def score(d: torch.Tensor, reference: torch.Tensor) -> float | None:
    """AttackBench's optimality of distances ``d`` against the per-point best ``reference`` (same points).

    Returns None where it is undefined: no point has a finite reference distance, or every
    reference distance equals the largest one (the best curve drops at a single distance).
    """
    finite = reference[torch.isfinite(reference)]
    if len(finite) == 0:
        return None
    top = float(finite.max())
    room = float((top - reference.clamp(max=top)).sum())
    if room <= 0:
        return None
    return float((top - d.clamp(max=top)).sum()) / room


def curve(d: torch.Tensor, top: float, points: int = CURVE_POINTS) -> list[list[float]]:
    """``[[distance, robust accuracy], ...]`` at ``points`` distances from 0 to ``top`` (accuracy over ``d``'s points)."""
    if len(d) == 0 or top <= 0:
        return []
    grid = torch.linspace(0.0, top, points, dtype=torch.float64)
    accuracy = (d[None, :] > grid[:, None]).double().mean(dim=1)
    return [[round(float(g), 6), round(float(a), 6)] for g, a in zip(grid, accuracy)]


def table(names: list[tuple[str, str]], found: list[torch.Tensor], correct: torch.Tensor,
          minimal: list[bool]) -> dict[str, Any]:
    """Optimality and curves of every minimal-norm run (``names``: (attack, framework) per run).

    Args:
        names: (attack, framework) of each run, in the order of ``found``.
        found: per run, the per-point distance it found in the evaluation's norm (NaN: none).
        correct: which points the model classifies correctly; only they are scored.
        minimal: per run, whether it is a minimal-norm attack (the others are left out).

    Returns:
        ``{"runs": [{"attack", "framework", "optimality", "median", "curve"}], "best": curve of d*,
        "max_distance": D, "points": how many points were scored}``; empty runs when no
        minimal-norm attack ran.
    """
    scored = [(name, distances(f[correct])) for name, f, m in zip(names, found, minimal) if m]
    if not scored or int(correct.sum()) == 0:
        return {"runs": [], "best": [], "max_distance": None, "points": int(correct.sum())}
    reference = best([d for _, d in scored])
    finite = reference[torch.isfinite(reference)]
    top = float(finite.max()) if len(finite) else 0.0
    span = top * 1.5
    runs = []
    for (attack, framework), d in scored:
        hit = d[torch.isfinite(d)]
        runs.append({"attack": attack, "framework": framework, "optimality": _round(score(d, reference)),
                     "median": round(float(hit.median()), 6) if len(hit) else None, "curve": curve(d, span)})
    return {"runs": runs, "best": curve(reference, span), "max_distance": round(top, 6) if len(finite) else None,
            "points": len(reference)}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
