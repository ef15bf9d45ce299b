"""``robust evaluate`` and ``robust compare`` as functions of one options object."""

from __future__ import annotations

from dataclasses import dataclass

from robust.errors import RobustError
from robust.runs.common import (STATE_FILE, Finished, RunOptions, attacks_for, batch_size, budgets,
                                calibrated_detector, default_attacks, defended, load, out_dir, write)


@dataclass(frozen=True)
class EvaluateOptions(RunOptions):
    """``robust evaluate``: the cascade, the checks, defenses, sweeps, detectors, resumable."""

    framework: str = "robust"
    checks: bool = True
    strict: bool = False
    defenses: tuple[str, ...] = ()
    naive: bool = False
    eps_sweep: int | None = None
    detector: str | None = None
    resume: bool = False


@dataclass(frozen=True)
class CompareOptions(RunOptions):
    """``robust compare``: each attack through several frameworks on the same points."""

    frameworks: str = "robust,art,foolbox,autoattack"
    budget: int | None = None


def run_evaluate(options: EvaluateOptions) -> Finished:
    """Run ``robust evaluate``: under torchrun each rank attacks its share and rank 0 writes the result."""
    from robust.evaluation import distributed
    from robust.evaluation.cascade import evaluate as run

    rank, device = distributed.setup(options.device)
    levels, size = budgets(options, options.eps_sweep), batch_size(options.batch_size)
    target = out_dir(options, options.resume)
    attacks = attacks_for(options.attacks or default_attacks(options.norm, "standard"), options.framework)
    model, data = load(options, device)
    model = defended(model, options.defenses, options.naive)
    detector = calibrated_detector(options.detector, model, options.dataset)
    result = run(model, data, attacks, eps=levels, norm=options.norm, batch_size=size, seed=options.seed,
                 progress=options.progress and rank == 0, command=options.command, checks=options.checks,
                 naive=options.naive, detector=detector, checkpoint=target / STATE_FILE, resume=options.resume,
                 chunk_size=options.chunk_size, workers=options.workers)
    finished = Finished(result, target, rank)
    if rank == 0:
        finished.written = write(result, target)
        (target / STATE_FILE).unlink(missing_ok=True)
    distributed.teardown()
    return finished


def run_compare(options: CompareOptions) -> Finished:
    """Run ``robust compare``: every framework on the same points, verified by the same code."""
    from robust.comparison import compare as run

    if len(options.eps) > 1:
        raise RobustError("compare takes one --eps; use evaluate for several")
    eps, size = budgets(options)[-1], batch_size(options.batch_size)
    if size == "auto":
        raise RobustError("compare takes a fixed --batch-size (the frameworks run on the same batches)")
    target = out_dir(options)
    attacks = attacks_for(options.attacks or default_attacks(options.norm, "pgd"))
    frameworks = [f.strip() for f in options.frameworks.split(",") if f.strip()]
    model, data = load(options, options.device)
    result = run(model, data, attacks, frameworks=frameworks, eps=eps, norm=options.norm, batch_size=int(size),
                 seed=options.seed, progress=options.progress, command=options.command, budget=options.budget)
    return Finished(result, target, 0, write(result, target))
