"""evaluate(): a clean pass, then the attacks as a cascade over the points still robust.

The cascade follows AutoAttack's robust-only loop: each attack sees only the points that
every earlier attack failed on, and the robust accuracy is the per-sample worst case.
The result is assembled once, from everything the evaluation found, and then frozen.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from robust.attack import Attack
from robust.data import Data
from robust.data.catalog import is_image_files, load_dataset
from robust.data.stream import Chunk, Source, as_source
from robust.defense import defense_chain, naive_model
from robust.errors import RobustError
from robust.evaluation.detection import Detection
from robust.evaluation.environment import environment
from robust.evaluation.checks import SUBSET
from robust.evaluation.examples import EXAMPLES, build_examples
from robust.evaluation.memory import PeakMemory
from robust.evaluation.outcome import AttackRun, Cascade, gather, merge, samples
from robust.evaluation.runner import Batches, Distances, RunState, fingerprint, progress_bar, run_batch, run_key
from robust.evaluation.settings import (AttackSpec, as_model, batch_size_for, check_norm, clean_predictions,
                                        eps_levels, resolve_attacks)
from robust.model import Classifier
from robust.result import Check, Evaluation, Norm

log = logging.getLogger(__name__)


@dataclass
class Job:
    """Everything an evaluation settled before its first attack; ``x``, ``y``, ``clean`` and
    ``index`` hold the chunk being attacked (its points, labels, clean predictions, global indices)."""

    model: Classifier
    source: Source
    attacks: list[Attack]
    norm: str
    batches: Batches
    seed: int = 0
    cascade: bool = True
    progress: bool = False
    state: RunState = field(default_factory=RunState)
    chunk: int = 0
    workers: int | None = None
    x: torch.Tensor = field(default_factory=lambda: torch.empty(0))
    y: torch.Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.long))
    clean: torch.Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.long))
    index: torch.Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.long))

    @property
    def dataset(self) -> str:
        return self.source.name

    def parts(self) -> Iterator[Job]:
        """This job on each chunk of its source (this process's share under torchrun), clean pass made."""
        pin = self.model.device.type == "cuda"
        for chunk in self.source.chunks(self.chunk, workers=self.workers, pin=pin, rank=self.state.rank,
                                        world=self.state.world):
            yield self.on(chunk)

    def on(self, chunk: Chunk) -> Job:
        clean = clean_predictions(self.model, chunk.x, chunk.y, self.batches.size)
        return replace(self, x=chunk.x, y=chunk.y, clean=clean, index=chunk.index)


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
    chunk_size: int | None = None,
    workers: int | None = None,
) -> Evaluation:
    """Measure clean and robust accuracy of ``model`` on ``data`` under ``attacks``.

    Args:
        model: a :class:`~robust.Classifier` (used as it is), a plain ``nn.Module`` (bounds
            (0, 1)) or a zoo name / model spec understood by :func:`robust.load_model`.
        data: an ``(x, y)`` pair of tensors, a torch ``Dataset``, a ``DataLoader`` or a
            dataset name understood by :func:`robust.load_dataset` (image files are read with the
            model's own preprocessing); a dataset's ``name`` and ``classes`` are recorded.
        attacks: attack names, specs (``"pgd:steps=10"``) or configured attack objects, run in this order.
        eps: perturbation budget in input space, in ``norm``; several values evaluate each
            (recorded in ``sweep``), and the largest is the headline.
        norm: "linf", "l2", "l1" or "l0" (components changed); attacks created here by name use it.
        batch_size: samples per attack call, or ``"auto"``: on CUDA the whole chunk, halved
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
        chunk_size: points read and attacked together (see :mod:`robust.data.stream`); default:
            data held in memory in one chunk, anything else in chunks of about 256 MiB of images.
            Memory grows with the chunk, not with the dataset; only the per-sample outcomes and a
            few example images are kept.
        workers: DataLoader worker processes that read and decode ahead (default: up to 4).

    Returns:
        A frozen :class:`~robust.result.Evaluation`; robust accuracy is the per-sample worst case.
    """
    levels = eps_levels(eps)
    job = prepare(model, data, attacks, norm=norm, batch_size=batch_size, device=device, seed=seed, cascade=cascade,
                  progress=progress, checkpoint=checkpoint, resume=resume, chunk_size=chunk_size, workers=workers)
    job.model.memo = {}  # attacks keep per-point facts for this evaluation only (the screen's scores)
    try:
        return _evaluate(job, levels, checks=checks, naive=naive, detector=detector, command=command)
    finally:
        job.model.memo = None


def _evaluate(job: Job, levels: list[float], *, checks: bool, naive: bool, detector: Any,
              command: str | None) -> Evaluation:
    found: dict[str, list[Cascade]] = {"main": [], "naive": [], **{f"eps={e!r}": [] for e in levels[:-1]}}
    subset: list[tuple[torch.Tensor, torch.Tensor]] = []  # the first correctly classified points, for the checks
    watch = Detection(detector) if detector is not None else None
    for part in _progress(job):
        main = run_cascade(part, levels[-1], keep=len(part.y) if watch else EXAMPLES)
        found["main"].append(main)
        for e in levels[:-1]:
            found[f"eps={e!r}"].append(run_cascade(part, e))
        if naive and defense_chain(job.model):
            found["naive"].append(run_cascade(part, levels[-1], model=naive_model(job.model)))
        if watch is not None:
            watch.add(part.x[main.correct], _adversarial(main))
            main.picks = dict(list(main.picks.items())[:EXAMPLES])
        if checks and sum(len(y) for _, y in subset) < SUBSET:
            subset.append((part.x[main.correct][:SUBSET].clone(), part.y[main.correct][:SUBSET]))
    main, extras = _assemble(job, found, levels)
    if checks and job.state.rank == 0:
        extras["checks"] = run_checks(job, subset, main)
    if watch is not None:
        extras["detection"] = watch.summary(job.state.split)
    return record(job, main, command=command, **extras)


def _progress(job: Job) -> Iterator[Job]:
    """The job's chunks, with a progress bar over them when there are several."""
    total = -(-len(job.source) // job.chunk)
    if total <= 1:
        yield from job.parts()
        return
    yield from progress_bar(job.parts(), total, "chunks", job.progress, unit="chunk")


def _assemble(job: Job, found: dict[str, list[Cascade]], levels: list[float]) -> tuple[Cascade, dict[str, Any]]:
    """Every process's chunks put together: the headline cascade, and the sweep and naive entries."""
    together = gather if job.state.split else list
    merged = {key: merge(together(parts)) for key, parts in found.items() if parts}
    main = merged["main"]
    sweep = [sweep_entry(merged[f"eps={e!r}"]) for e in levels[:-1]] + [sweep_entry(main)] if len(levels) > 1 else None
    extras: dict[str, Any] = {"sweep": sweep}
    if "naive" in merged:
        extras["naive"] = naive_entry(job, merged["naive"])
    return main, extras


def _adversarial(run: Cascade) -> torch.Tensor:
    images = [adv for _, _, adv in run.picks.values()]
    return torch.stack(images) if images else torch.empty(0)


def prepare(model: nn.Module | str, data: Data | str, attacks: Sequence[AttackSpec] | AttackSpec, *, norm: str,
            batch_size: int | str, device: str | torch.device | None, seed: int, cascade: bool, progress: bool,
            checkpoint: str | Path | None = None, resume: bool = False, chunk_size: int | None = None,
            workers: int | None = None) -> Job:
    """Resolve and check everything before the first chunk is read."""
    check_norm(norm)
    clf = as_model(model, device)
    source = as_source(_dataset(data, clf))
    size = batch_size_for(batch_size, clf, len(source))
    runs = resolve_attacks(attacks, norm)
    path = Path(checkpoint) if checkpoint else None
    if resume and path is None:
        raise RobustError("resume=True continues from a checkpoint file: pass checkpoint=PATH")
    state = RunState(path, resume, fingerprint(clf, source) if path is not None else "")
    chunk = source.chunk_size(size, chunk_size)
    state.split = state.world > 1 and len(source) > chunk  # several chunks: each process reads and attacks its own
    return Job(clf, source, runs, norm, Batches(size), seed, cascade, progress, state, chunk, workers)


def _dataset(data: Data | str, model: Classifier) -> Any:
    """A dataset name is loaded with the model's own preprocessing (resize and crop) for image files."""
    prep = model.preprocessing
    if not isinstance(data, str) or prep is None or not is_image_files(data):
        return load_dataset(data) if isinstance(data, str) else data
    return load_dataset(data, resize=prep.resize, crop=prep.crop)


def run_cascade(job: Job, eps: float, model: Classifier | None = None, keep: int = EXAMPLES) -> Cascade:
    """Every attack of ``job`` on its chunk at ``eps`` (on ``model``, default the job's), as a cascade or side by side."""
    correct = job.clean == job.y
    n = len(job.y)
    out = Cascade(eps, job.index, job.clean, job.y, correct, correct.clone(), [None] * n, Distances.empty(n))
    for i, attack in enumerate(job.attacks):
        pool = out.robust if job.cascade else correct
        found, stats = run_attack(job, model or job.model, attack, pool, eps, job.seed + 1000 * i + int(job.index[0]),
                                  keep)
        newly = found.within(eps, job.norm)
        _credit(out, job, attack, newly, found, keep)
        out.found.keep_smaller(found)
        out.robust &= ~newly
        left = out.robust.clone() if job.cascade else correct & ~newly
        out.runs.append(AttackRun(stats, found, left, newly))
    return out


def _credit(out: Cascade, job: Job, attack: Attack, newly: torch.Tensor, found: Distances, keep: int) -> None:
    """Name ``attack`` as the breaker of the points it broke first, and keep a few of their images."""
    label = attack.name if attack.framework == "robust" else f"{attack.name} ({attack.framework})"
    for j in (newly & out.robust).nonzero().flatten().tolist():
        out.broken_by[j] = label
        if j in found.kept and len(out.picks) < keep:
            out.picks[int(job.index[j])] = (label, job.x[j].clone(), found.kept[j])


def run_attack(job: Job, model: Classifier, attack: Attack, pool: torch.Tensor, eps: float, seed: int,
               keep: int) -> tuple[Distances, dict[str, Any]]:
    """Run one attack on the points in ``pool``; return the perturbations it found and its statistics.

    Minimization attacks run without eps, so the distance they found is kept even beyond eps.
    """
    idx = pool.nonzero().flatten()
    batches = job.batches.cut(idx)
    key = run_key(attack, eps, seed, job.index[idx], model)
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
    stats = {
        "name": attack.name, "framework": attack.framework, "params": _jsonable(attack.params),
        "seconds": sum(p.seconds for p in parts), "forward_passes": sum(p.forward for p in parts),
        "backward_passes": sum(p.backward for p in parts), "forward_samples": sum(p.forward_rows for p in parts),
        "backward_samples": sum(p.backward_rows for p in parts), "attacked": len(idx), "broken": broken,
        "violations": sum(p.violations for p in parts), "peak_memory_mb": memory.mib,
    }
    log.info("%s broke %d of %d points in %.2f s", attack.name, broken, len(idx), stats["seconds"])
    return found, stats


def record(job: Job, main: Cascade, *, command: str | None = None, **extras: Any) -> Evaluation:
    """The frozen result of ``job``'s headline cascade (all chunks merged), with whatever else the caller measured."""
    return Evaluation(
        model=job.model.name, dataset=job.dataset, n=len(main.y), eps=float(main.eps), norm=cast(Norm, job.norm),
        seed=job.seed, clean_accuracy=float(main.correct.float().mean()),
        robust_accuracy=float(main.robust.float().mean()), attacks=main.summaries(), samples=samples(main),
        cascade=job.cascade, environment=environment(job.model, command), examples=build_examples(job.model, main),
        defenses=[d.describe() for d in defense_chain(job.model)], classes=job.source.classes,
        **{k: v for k, v in extras.items() if v is not None},
    )


def sweep_entry(run: Cascade) -> dict[str, Any]:
    return {"eps": run.eps, "robust_accuracy": float(run.robust.float().mean()),
            "attacks": [{"name": a.name, "framework": a.framework, "robust_accuracy": a.robust_accuracy}
                        for a in run.summaries()]}


def naive_entry(job: Job, other: Cascade) -> dict[str, Any]:
    """The same attacks through every defense's true gradients: what a naive evaluation would report."""
    naive = naive_model(job.model)
    return {"robust_accuracy": float(other.robust.float().mean()), "defenses": [d.describe() for d in defense_chain(naive)],
            "attacks": [{"name": a.name, "framework": a.framework, "robust_accuracy": a.robust_accuracy,
                         "success_rate": a.success_rate} for a in other.summaries()]}


def run_checks(job: Job, subset: list[tuple[torch.Tensor, torch.Tensor]], main: Cascade) -> list[Check]:
    """The checks on the first correctly classified points this process read."""
    from robust.evaluation.checks import run_checks as check

    x = torch.cat([x for x, _ in subset]) if subset else torch.empty(0)
    y = torch.cat([y for _, y in subset]) if subset else torch.empty(0, dtype=torch.long)
    keep = main.correct.tolist()
    return check(job.model, x, y, eps=main.eps, norm=job.norm, seed=job.seed,
                 attacks=job.attacks, broken_by=[b for b, c in zip(main.broken_by, keep) if c])


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if isinstance(v, (int, float, str, bool, type(None))) else repr(v)) for k, v in params.items()}
