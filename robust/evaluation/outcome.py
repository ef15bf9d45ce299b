"""What the cascade found, chunk by chunk, put together over the whole dataset.

An evaluation reads its points in chunks (:mod:`robust.data.stream`) and runs the cascade on
each; a :class:`Cascade` holds one chunk's per-point outcomes and per-attack statistics, with
the chunk's global indices. :func:`merge` puts chunks together (in any order, from any
process) into one :class:`Cascade` over all points, from which the attack summaries follow:
sums of times and passes, medians over every success, robust accuracy over every point.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from robust.evaluation.examples import EXAMPLES
from robust.evaluation.runner import Distances
from robust.params import ALL_NORMS
from robust.result import AttackSummary


@dataclass
class AttackRun:
    """One attack of the cascade on one chunk: statistics to add up, per-point distances and what it left."""

    stats: dict[str, Any]
    found: Distances
    left: torch.Tensor  # per point: still robust after this attack (cascade: after it and every earlier one)
    broke: torch.Tensor  # per point: this attack found an adversarial example within eps


@dataclass
class Cascade:
    """The attacks' outcomes at one eps, per point (in the order of ``index``) and per attack.

    Attributes:
        index: the global indices of the points.
        clean: clean predictions; y: labels; correct: clean prediction == label.
        robust: still robust after every attack; broken_by: the first attack to break each point.
        found: the smallest adversarial perturbations found (NaN where none).
        runs: per attack, its statistics and per-point outcomes.
        picks: a few broken points: global index -> (attack, clean image, adversarial image).
    """

    eps: float
    index: torch.Tensor
    clean: torch.Tensor
    y: torch.Tensor
    correct: torch.Tensor
    robust: torch.Tensor
    broken_by: list[str | None]
    found: Distances
    runs: list[AttackRun] = field(default_factory=list)
    picks: dict[int, tuple[str, torch.Tensor, torch.Tensor]] = field(default_factory=dict)

    def summaries(self) -> list[AttackSummary]:
        """Each attack's summary over the points of this cascade."""
        return [_summary(run) for run in self.runs]


def merge(parts: list[Cascade]) -> Cascade:
    """One cascade over the points of every part, ordered by global index."""
    if len(parts) == 1:
        return parts[0]
    index = torch.cat([p.index for p in parts])
    order = index.argsort()
    cat = lambda name: torch.cat([getattr(p, name) for p in parts])[order]  # noqa: E731
    broken_by = [b for p in parts for b in p.broken_by]
    merged = Cascade(parts[0].eps, index[order], cat("clean"), cat("y"), cat("correct"), cat("robust"),
                     [broken_by[i] for i in order.tolist()], _distances([p.found for p in parts], order))
    merged.runs = [_merge_runs([p.runs[i] for p in parts], order) for i in range(len(parts[0].runs))]
    picks = {j: pick for p in parts for j, pick in p.picks.items()}
    merged.picks = dict(sorted(picks.items())[:EXAMPLES])  # the same whichever process read which chunk
    return merged


def _distances(parts: list[Distances], order: torch.Tensor) -> Distances:
    return Distances(torch.cat([d.sizes for d in parts])[order])


def _merge_runs(runs: list[AttackRun], order: torch.Tensor) -> AttackRun:
    stats = dict(runs[0].stats)
    for key in ("seconds", "forward_passes", "backward_passes", "forward_samples", "backward_samples", "attacked",
                "broken", "violations"):
        stats[key] = sum(r.stats[key] for r in runs)
    memory = [r.stats["peak_memory_mb"] for r in runs if r.stats["peak_memory_mb"] is not None]
    stats["peak_memory_mb"] = max(memory) if memory else None
    return AttackRun(stats, _distances([r.found for r in runs], order), torch.cat([r.left for r in runs])[order],
                     torch.cat([r.broke for r in runs])[order])


def _summary(run: AttackRun) -> AttackSummary:
    s = run.stats
    hits = run.found.hits
    per = max(s["attacked"], 1)
    medians = {f"median_{n}": _median(run.found.of(n)[hits]) for n in ALL_NORMS}
    means = {f"mean_{n}": _mean(run.found.of(n)[hits]) for n in ALL_NORMS}
    return AttackSummary(
        name=s["name"], framework=s["framework"], params=s["params"], robust_accuracy=float(run.left.float().mean()),
        success_rate=s["broken"] / per, **medians, **means,
        seconds=s["seconds"], forward_passes=s["forward_passes"], backward_passes=s["backward_passes"],
        attacked=s["attacked"], broken=s["broken"], violations=s["violations"],
        peak_memory_mb=s["peak_memory_mb"], forward_samples=s["forward_samples"],
        backward_samples=s["backward_samples"], forwards_per_sample=round(s["forward_samples"] / per, 2),
        backwards_per_sample=round(s["backward_samples"] / per, 2))


def samples(run: Cascade) -> list[dict[str, Any]]:
    """Per-sample outcomes; ``linf``/``l2``/``l1``/``l0`` are the smallest adversarial perturbations any
    attack found (beyond eps too, for minimization attacks), so robust accuracy at a smaller eps follows."""
    return [
        {"index": int(i), "label": int(run.y[k]), "clean_prediction": int(run.clean[k]), "broken_by": run.broken_by[k],
         **{n: _num(size) for n, size in zip(ALL_NORMS, run.found.sizes[k])}}
        for k, i in enumerate(run.index.tolist())
    ]


def _num(value: torch.Tensor) -> float | None:
    v = float(value)
    return None if v != v else round(v, 6)


def _median(values: torch.Tensor) -> float | None:
    return float(values.median()) if len(values) else None


def _mean(values: torch.Tensor) -> float | None:
    return float(values.mean()) if len(values) else None


def gather(parts: list[Cascade]) -> list[Cascade]:
    """Every process's chunks, on every process (one process: ``parts`` as they are)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return parts
    shards: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(shards, parts)
    return [part for shard in shards for part in shard]
