"""evaluate(): a clean pass, then the attacks as a cascade over the points still robust.

The cascade follows AutoAttack's robust-only loop: each attack sees only the points that
every earlier attack failed on, and the robust accuracy is the per-sample worst case.
The result is assembled once, from everything the evaluation found, and then frozen.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from robust.attack import Attack
from robust.data import Data, collect
from robust.defense import defense_chain, naive_model
from robust.errors import RobustError
from robust.evaluation.detection import detection_summary
from robust.evaluation.environment import environment
from robust.evaluation.examples import EXAMPLES, build_examples
from robust.evaluation.memory import PeakMemory
from robust.evaluation.runner import Batches, Distances, RunState, fingerprint, progress_bar, run_batch, run_key
from robust.evaluation.settings import (AttackSpec, as_model, batch_size_for, check_norm, clean_predictions,
                                        eps_levels, resolve_attacks)
from robust.model import Classifier
from robust.result import AttackSummary, Check, Evaluation, Norm

log = logging.getLogger(__name__)


@dataclass
class Job:
    """Everything an evaluation settled before its first attack: model, points, attacks, batching."""

    model: Classifier
    x: torch.Tensor
    y: torch.Tensor
    dataset: str
    attacks: list[Attack]
    norm: str
    batches: Batches
    seed: int = 0
    cascade: bool = True
    progress: bool = False
    state: RunState = field(default_factory=RunState)
    clean: torch.Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.long))


@dataclass
class Cascade:
    """The attacks' outcomes at one eps: per point and per attack."""

    eps: float
    correct: torch.Tensor
    robust: torch.Tensor
    broken_by: list[str | None]
    found: Distances
    summaries: list[AttackSummary] = field(default_factory=list)
    masks: list[torch.Tensor] = field(default_factory=list)  # per attack: the points it broke within eps
    adversarial: dict[int, torch.Tensor] = field(default_factory=dict)  # kept images, in the order found

    def picks(self) -> dict[int, tuple[str, torch.Tensor]]:
        """The first few adversarial examples found, with the attack that found each, for the report."""
        return {j: (str(self.broken_by[j]), image) for j, image in list(self.adversarial.items())[:EXAMPLES]}


def evaluate(
    model: nn.Module | str,
    data: Data | str,
    attacks: Sequence[AttackSpec] | AttackSpec,
    *,
    eps: float | Sequence[float],
    norm: str = "linf",
    batch_size: int | str = 256,
    device: str | torch.device | None = None,
    seed: int = 0,
    cascade: bool = True,
    progress: bool = False,
    command: str | None = None,
    checks: bool = False,
    naive: bool = False,
    detector: Any = None,
    checkpoint: str | Path | None = None,
    resume: bool = False,
) -> Evaluation:
    """Measure clean and robust accuracy of ``model`` on ``data`` under ``attacks``.

    Args:
        model: a :class:`~robust.Classifier` (used as it is), a plain ``nn.Module`` (bounds
            (0, 1)) or a zoo name / model spec understood by :func:`robust.load_model`.
        data: an ``(x, y)`` pair of tensors, a torch ``Dataset``, a ``DataLoader`` or a
            dataset name understood by :func:`robust.load_dataset`; a dataset's ``name`` is recorded.
        attacks: attack names, specs (``"pgd:steps=10"``) or configured attack objects, run in this order.
        eps: perturbation budget in input space, in ``norm``; several values evaluate each
            (recorded in ``sweep``), and the largest is the headline.
        norm: "linf" or "l2"; attacks created here by name use it.
        batch_size: samples per attack call, or ``"auto"``: on CUDA the whole set, halved
            (and the batch retried) on an out-of-memory error; 256 on the CPU.
        device: "auto"/None, "cpu" or "cuda"; moves a plain module (a Classifier keeps its own).
        seed: seeds every attack's randomness.
        cascade: attack only the points still robust (default); False runs every attack on
            every correctly classified point, for per-attack numbers.
        progress: show progress bars.
        command: the command line to record in the result.
        checks: run the sanity checks of :mod:`robust.evaluation.checks` (extra attack runs on a subset).
        naive: for a defended model (``create_defense(...).wrap(model)``), also run the
            attacks with every defense's true gradients and record that robust accuracy,
            which shows how much robustness a naive evaluation would falsely report.
        detector: a calibrated detector (``create_defense("feature-squeezing").detector(model)``);
            the result records how often it flags the clean inputs and the adversarial examples found.
        checkpoint: a state file rewritten atomically after every batch; with ``resume``, a run
            killed at any point continues from it and ends with the same per-sample results.
            The file stays after success (the command line deletes it once the result is written).

    Returns:
        A frozen :class:`~robust.result.Evaluation`; robust accuracy is the per-sample worst case.
    """
    levels = eps_levels(eps)
    job = prepare(model, data, attacks, norm=norm, batch_size=batch_size, device=device, seed=seed, cascade=cascade,
                  progress=progress, checkpoint=checkpoint, resume=resume)
    keep = len(job.y) if detector is not None else EXAMPLES
    main = run_cascade(job, levels[-1], keep=keep)
    sweep = [run_cascade(job, e) for e in levels[:-1]] + [main] if len(levels) > 1 else None
    extras: dict[str, Any] = {"sweep": [sweep_entry(c) for c in sweep] if sweep else None}
    if naive and defense_chain(job.model):
        extras["naive"] = naive_entry(job, main.eps)
    if checks and job.state.rank == 0:
        extras["checks"] = run_checks(job, main)
    if detector is not None:
        extras["detection"] = detect(detector, job, main)
    return record(job, main, command=command, **extras)


def prepare(model: nn.Module | str, data: Data | str, attacks: Sequence[AttackSpec] | AttackSpec, *, norm: str,
            batch_size: int | str, device: str | torch.device | None, seed: int, cascade: bool, progress: bool,
            checkpoint: str | Path | None = None, resume: bool = False) -> Job:
    """Resolve and check everything, then make the clean pass."""
    check_norm(norm)
    clf = as_model(model, device)
    x, y, name = collect(data)
    size = batch_size_for(batch_size, clf, len(x))
    runs = resolve_attacks(attacks, norm)
    path = Path(checkpoint) if checkpoint else None
    if resume and path is None:
        raise RobustError("resume=True continues from a checkpoint file: pass checkpoint=PATH")
    clean = clean_predictions(clf, x, y, size)
    state = RunState(path, resume, fingerprint(clf, x, y) if path is not None else "")
    return Job(clf, x, y, name, runs, norm, Batches(size), seed, cascade, progress, state, clean)


def run_cascade(job: Job, eps: float, model: Classifier | None = None, keep: int = EXAMPLES) -> Cascade:
    """Every attack of ``job`` at ``eps`` (on ``model``, default the job's), as a cascade or side by side."""
    correct = job.clean == job.y
    out = Cascade(eps, correct, correct.clone(), [None] * len(job.y), Distances.empty(len(job.y)))
    for i, attack in enumerate(job.attacks):
        pool = out.robust if job.cascade else correct
        found, stats = run_attack(job, model or job.model, attack, pool, eps, job.seed + 1000 * i, keep)
        newly = found.within(eps, job.norm)
        out.masks.append(newly)
        _credit(out, attack, newly, found)
        out.found.keep_smaller(found)
        out.robust &= ~newly
        left = out.robust if job.cascade else correct & ~newly
        out.summaries.append(AttackSummary(robust_accuracy=float(left.float().mean()), **stats))
    return out


def _credit(out: Cascade, attack: Attack, newly: torch.Tensor, found: Distances) -> None:
    """Name ``attack`` as the breaker of the points it broke first, and keep a few of their images."""
    label = attack.name if attack.framework == "robust" else f"{attack.name} ({attack.framework})"
    for j in (newly & out.robust).nonzero().flatten().tolist():
        out.broken_by[j] = label
        if j in found.kept:
            out.adversarial[j] = found.kept[j]


def run_attack(job: Job, model: Classifier, attack: Attack, pool: torch.Tensor, eps: float, seed: int,
               keep: int) -> tuple[Distances, dict[str, Any]]:
    """Run one attack on the points in ``pool``; return the perturbations it found and its statistics.

    Minimization attacks run without eps, so the distance they found is kept even beyond eps.
    """
    idx = pool.nonzero().flatten()
    batches = job.batches.cut(idx)
    key = run_key(attack, eps, seed, idx, model)
    mine = job.state.mine(len(batches))
    with PeakMemory(model.device) as memory:
        for b in progress_bar(mine, len(mine), attack.name, job.progress):
            if job.state.get(key, b) is None:
                outcome = run_batch(model, attack, job.x, job.y, batches[b], eps=eps, norm=job.norm, seed=seed + b,
                                    keep=keep, plan=job.batches)
                job.state.put(key, b, outcome)
    parts = job.state.gather(key, len(batches))
    found = Distances.gather(len(job.y), parts, keep)
    broken = int(found.within(eps, job.norm).sum())
    hits = ~torch.isnan(found.l2)
    stats = {
        "name": attack.name, "framework": attack.framework, "params": _jsonable(attack.params),
        "success_rate": broken / max(len(idx), 1), "median_l2": _median(found.l2[hits]),
        "median_linf": _median(found.linf[hits]), "seconds": sum(p.seconds for p in parts),
        "forward_passes": sum(p.forward for p in parts), "backward_passes": sum(p.backward for p in parts),
        **_per_sample(sum(p.forward_rows for p in parts), sum(p.backward_rows for p in parts), len(idx)),
        "attacked": len(idx), "broken": broken, "violations": sum(p.violations for p in parts),
        "mean_l2": _mean(found.l2[hits]), "mean_linf": _mean(found.linf[hits]), "peak_memory_mb": memory.mib,
    }
    log.info("%s broke %d of %d points in %.2f s", attack.name, broken, len(idx), stats["seconds"])
    return found, stats


def record(job: Job, main: Cascade, *, command: str | None = None, **extras: Any) -> Evaluation:
    """The frozen result of ``job``'s headline cascade, with whatever else the caller measured."""
    y = job.y
    return Evaluation(
        model=job.model.name, dataset=job.dataset, n=len(y), eps=float(main.eps), norm=cast(Norm, job.norm),
        seed=job.seed, clean_accuracy=float(main.correct.float().mean()),
        robust_accuracy=float(main.robust.float().mean()), attacks=main.summaries,
        samples=_samples(y, job.clean, main.broken_by, main.found), cascade=job.cascade,
        environment=environment(job.model, command), examples=build_examples(job.model, job.x, y, main.picks()),
        defenses=[d.describe() for d in defense_chain(job.model)], **{k: v for k, v in extras.items() if v is not None},
    )


def sweep_entry(run: Cascade) -> dict[str, Any]:
    return {"eps": run.eps, "robust_accuracy": float(run.robust.float().mean()),
            "attacks": [{"name": a.name, "framework": a.framework, "robust_accuracy": a.robust_accuracy}
                        for a in run.summaries]}


def naive_entry(job: Job, eps: float) -> dict[str, Any]:
    """The same attacks through every defense's true gradients: what a naive evaluation would report."""
    naive = naive_model(job.model)
    other = run_cascade(job, eps, model=naive)
    return {"robust_accuracy": float(other.robust.float().mean()), "defenses": [d.describe() for d in defense_chain(naive)],
            "attacks": [{"name": a.name, "framework": a.framework, "robust_accuracy": a.robust_accuracy,
                         "success_rate": a.success_rate} for a in other.summaries]}


def run_checks(job: Job, main: Cascade) -> list[Check]:
    from robust.evaluation.checks import run_checks as check

    keep = main.correct.tolist()
    return check(job.model, job.x[main.correct], job.y[main.correct], eps=main.eps, norm=job.norm, seed=job.seed,
                 attacks=job.attacks, broken_by=[b for b, c in zip(main.broken_by, keep) if c])


def detect(detector: Any, job: Job, main: Cascade) -> dict[str, Any]:
    x_adv = torch.stack(list(main.adversarial.values())) if main.adversarial else job.x[:0]
    return detection_summary(detector, job.x[main.correct], x_adv)


def _samples(y: torch.Tensor, pred: torch.Tensor, broken_by: list[str | None], found: Distances) -> list[dict[str, Any]]:
    """Per-sample outcomes; ``l2``/``linf`` are the smallest adversarial perturbations any attack
    found (beyond eps too, for minimization attacks), so robust accuracy at a smaller eps follows."""
    return [
        {"index": i, "label": int(y[i]), "clean_prediction": int(pred[i]), "broken_by": broken_by[i],
         "l2": _num(found.l2[i]), "linf": _num(found.linf[i])}
        for i in range(len(y))
    ]


def _num(value: torch.Tensor) -> float | None:
    v = float(value)
    return None if v != v else round(v, 6)


def _per_sample(forward: int, backward: int, attacked: int) -> dict[str, Any]:
    """Sample passes in total and per attacked point (comparable across tools whatever their batching)."""
    per = max(attacked, 1)
    return {"forward_samples": forward, "backward_samples": backward,
            "forwards_per_sample": round(forward / per, 2), "backwards_per_sample": round(backward / per, 2)}


def _median(values: torch.Tensor) -> float | None:
    return float(values.median()) if len(values) else None


def _mean(values: torch.Tensor) -> float | None:
    return float(values.mean()) if len(values) else None


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if isinstance(v, (int, float, str, bool, type(None))) else repr(v)) for k, v in params.items()}
