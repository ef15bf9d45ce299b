"""The same attack through robust, ART, Foolbox and AutoAttack, every output verified in one place.

Each framework's output is checked by the harness in verify mode: the model is re-run,
norms are recomputed, and a sample outside the bounds or the eps ball counts as a
violation, never as a success. Success and robust accuracy come from that check alone.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import torch
from torch import nn

from robust.attack import Attack
from robust.comparison import adapters as fw
from robust.comparison import optimality
from robust.comparison.budget import budgeted
from robust.comparison.external import PIP_NAMES, external_attack
from robust.data import Data
from robust.errors import RobustError
from robust.evaluation.cascade import prepare, record, run_cascade
from robust.evaluation.outcome import merge
from robust.evaluation.settings import check_eps
from robust.model import Classifier
from robust.registry import ATTACKS
from robust.result import Evaluation


def compare(
    model: nn.Module | str,
    data: Data | str,
    attacks: Sequence[str | Attack],
    *,
    frameworks: Sequence[str] | str = fw.DEFAULT_FRAMEWORKS,
    eps: float,
    norm: str = "linf",
    batch_size: int = 256,
    device: str | torch.device | None = None,
    seed: int = 0,
    progress: bool = False,
    command: str | None = None,
    budget: int | None = None,
) -> Evaluation:
    """Run each attack through each framework on the same points and compare the verified results.

    Every framework attacks every correctly classified point (no cascade). A framework that
    is not installed is skipped with a warning and listed under ``comparison["missing"]``.
    ``frameworks`` defaults to robust, ART, Foolbox and AutoAttack; ``"all"`` names every one of
    :data:`~robust.comparison.adapters.FRAMEWORKS` (torchattacks, adv-lib and CleverHans too).
    Passes are counted per point by the model for every framework alike. With ``budget``, each
    framework is judged on the best point each sample reached within that many forward plus
    backward passes (:mod:`robust.comparison.budget`). Minimal-norm attacks are scored by
    AttackBench's optimality against the per-point best distance over every run
    (:mod:`robust.comparison.optimality`).

    Returns:
        An :class:`~robust.result.Evaluation` whose ``attacks`` hold one entry per (attack,
        framework) and whose ``comparison`` holds versions, parameter mappings, per-sample
        agreement between each pair of frameworks, and the capability matrix.
    """
    check_eps(eps)
    frameworks = fw.expand(frameworks)
    if budget is not None and budget < 1:
        raise RobustError(f"budget must be a positive number of passes per point, got {budget}")
    unknown = [f for f in frameworks if f not in fw.FRAMEWORKS]
    if unknown:
        raise RobustError(f"unknown framework {unknown[0]!r}; use one of {', '.join(fw.FRAMEWORKS)}")
    versions = {f: fw.version(f) for f in frameworks}
    missing = [f for f, v in versions.items() if v is None]
    for f in missing:
        warnings.warn(f"{f} is not installed: it is left out of the comparison (pip install {PIP_NAMES[f]})", stacklevel=2)
    runs, skipped, mapping = _plan(attacks, [f for f in frameworks if f not in missing], norm, budget)
    if not runs:
        raise RobustError("nothing to compare: no installed framework offers these attacks")
    job = prepare(model, data, runs, norm=norm, batch_size=batch_size, device=device, seed=seed, cascade=False,
                  progress=progress)
    main = merge([run_cascade(part, eps) for part in job.parts()])
    comparison = {
        "frameworks": {f: v for f, v in versions.items() if v is not None}, "missing": missing, "skipped": skipped,
        "mapping": mapping, "agreement": _agreement(job.attacks, [r.broke for r in main.runs], main.correct),
        "capabilities": fw.capabilities(), "budget": budget,
        "optimality": optimality.table([(a.name, a.framework) for a in job.attacks],
                                       [r.found.of(norm) for r in main.runs], main.correct,
                                       [not (a.needs_eps or a.takes_eps) for a in job.attacks]),
    }
    return record(job, main, command=command, comparison=comparison)


def _plan(attacks: Sequence[str | Attack], frameworks: list[str], norm: str, budget: int | None = None
          ) -> tuple[list[Attack], list[dict[str, str]], dict[str, dict[str, list[dict[str, Any]]]]]:
    runs: list[Attack] = []
    skipped: list[dict[str, str]] = []
    mapping: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for spec in attacks:
        ours = ATTACKS.create(spec) if isinstance(spec, str) else spec
        name, params = ours.name, ours.given
        params = {**params, "norm": params.get("norm") or norm} if "norm" in ours.defaults else params
        for framework in frameworks:
            if framework != "robust" and not fw.supports(framework, name, norm):
                skipped.append({"attack": name, "framework": framework, "reason": f"{framework} has no {norm} {name}"})
                continue
            attack = external_attack(framework, name, **params)
            if framework == "robust" and any(fw.supports(f, name, norm) for f in frameworks if f != "robust"):
                attack = _whole(attack)  # a preset pairs with another framework's whole run, not with its parts
            runs.append(attack if budget is None else budgeted(attack, budget))
            if framework != "robust":
                mapping.setdefault(name, {})[framework] = [asdict(row) for row in fw.mapping(framework, name, norm)]
    return runs, skipped, mapping


def _whole(attack: Attack) -> Attack:
    """``attack`` as one attack of the evaluation: a preset runs its cascade on each batch instead of its parts."""
    parts = type(attack)
    if parts.components is Attack.components:
        return attack

    def run(self: Attack, model: Classifier, x: torch.Tensor, y: torch.Tensor, *, eps: float | None, targeted: bool,
            generator: torch.Generator) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        return parts(**self.given).run(model, x, y, eps=eps, targeted=targeted, generator=generator)

    cls = type(parts.__name__, (parts,), {"components": Attack.components, "run": run, "__doc__": parts.__doc__})
    whole: Attack = cls(**attack.given)
    return whole


def _agreement(runs: list[Attack], masks: list[torch.Tensor], correct: torch.Tensor) -> list[dict[str, Any]]:
    """Per attack and pair of frameworks: points both fooled, only one fooled, or neither."""
    rows = []
    for i, a in enumerate(runs):
        for j in range(i + 1, len(runs)):
            b = runs[j]
            if a.name != b.name:
                continue
            ma, mb = masks[i][correct], masks[j][correct]
            rows.append({"attack": a.name, "a": a.framework, "b": b.framework, "both": int((ma & mb).sum()),
                         "only_a": int((ma & ~mb).sum()), "only_b": int((~ma & mb).sum()), "neither": int((~ma & ~mb).sum())})
    return rows


def comparison_table(result: dict[str, Any]) -> str:
    """Plain-text tables of a comparison result: per attack and framework, the survey's grid, then agreement.

    The first table has a row per run (robust accuracy, success rate, median and mean distance,
    optimality of minimal-norm attacks, seconds, forward + backward passes per attacked point,
    violations); the grid has attacks as rows and frameworks as columns, each cell robust
    accuracy / median distance / optimality.
    """
    norm = result["norm"]
    scores = optimality_of(result)
    head = ("attack", "framework", "robust acc", "success", f"median {norm}", f"mean {norm}", "optimality", "seconds",
            "passes/pt", "violations")
    rows: list[tuple[str, ...]] = []
    for a in result["attacks"]:
        med, mean = _distance_stats(a, norm)
        passes = a.get("forwards_per_sample", 0.0) + a.get("backwards_per_sample", 0.0)
        rows.append((a["name"], a["framework"], f"{a['robust_accuracy']:.2%}", f"{a['success_rate']:.2%}", _f(med),
                     _f(mean), _f(scores.get((a["name"], a["framework"]))), f"{a['seconds']:.2f}", f"{passes:.0f}",
                     str(a["violations"])))
    lines = _grid(head, rows)
    comparison = result.get("comparison") or {}
    if comparison.get("budget"):
        lines.append(f"(each framework judged on the best point reached within {comparison['budget']} passes per point)")
    lines += ["", *survey_grid(result, scores)]
    agreement = comparison.get("agreement", [])
    if agreement:
        pairs = [(r["attack"], f"{r['a']} vs {r['b']}", str(r["both"]), str(r["only_a"]), str(r["only_b"]),
                  str(r["neither"])) for r in agreement]
        lines += ["", *_grid(("attack", "pair", "both fooled", "only first", "only second", "neither"), pairs)]
    return "\n".join(lines)


def optimality_of(result: dict[str, Any]) -> dict[tuple[str, str], float | None]:
    """(attack, framework) -> optimality, for the minimal-norm runs of a comparison result."""
    runs = ((result.get("comparison") or {}).get("optimality") or {}).get("runs", [])
    return {(r["attack"], r["framework"]): r["optimality"] for r in runs}


def survey_grid(result: dict[str, Any], scores: dict[tuple[str, str], float | None]) -> list[str]:
    """Attacks as rows, frameworks as columns; each cell robust accuracy / median distance / optimality."""
    frameworks = list(dict.fromkeys(a["framework"] for a in result["attacks"]))
    cells: dict[str, dict[str, str]] = {}
    for a in result["attacks"]:
        med, _ = _distance_stats(a, result["norm"])
        score = scores.get((a["name"], a["framework"]))
        cells.setdefault(a["name"], {})[a["framework"]] = (
            f"{a['robust_accuracy']:.1%} / {_f(med)}" + ("" if score is None else f" / {score:.3f}"))
    head = (f"robust acc / median {result['norm']} / optimality", *frameworks)
    return _grid(head, [(name, *(row.get(f, "-") for f in frameworks)) for name, row in cells.items()])


def _distance_stats(a: dict[str, Any], norm: str) -> tuple[float | None, float | None]:
    return a.get(f"median_{norm}"), a.get(f"mean_{norm}")


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _grid(head: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    out = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head, *rows]]
    out.insert(1, "  ".join("-" * w for w in widths))
    return out
