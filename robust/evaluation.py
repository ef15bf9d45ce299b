"""evaluate(): a clean pass, then the attacks as a cascade over the points still robust.

The cascade follows AutoAttack's robust-only loop: each attack sees only the points that
every earlier attack failed on, and the robust accuracy is the per-sample worst case.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robust.attack import Attack
from robust.data import ArrayDataset, Data, collect
from robust.defense import defense_chain, naive_model
from robust.detection import detection_summary
from robust.errors import RobustError
from robust.environment import environment
from robust.examples import EXAMPLES, build_examples
from robust.memory import PeakMemory
from robust.model import Classifier, resolve_device
from robust.registry import create_attack
from robust.result import AttackSummary, Evaluation
from robust.runner import Batches, Distances, RunState, fingerprint, progress_bar, run_batch, run_key

log = logging.getLogger(__name__)


def evaluate(
    model: nn.Module | str,
    data: Data | str,
    attacks: Sequence[str | Attack] | str | Attack,
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
        model: a :class:`~robust.Classifier`, a plain ``nn.Module`` (bounds (0, 1)) or a
            zoo name / model spec understood by :func:`robust.load_model`.
        data: an ``(x, y)`` pair of tensors, a torch ``Dataset``, a ``DataLoader`` or a
            dataset name understood by :func:`robust.load_dataset`.
        attacks: attack names or configured attack objects, run in this order.
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
        checks: run the sanity checks of :mod:`robust.checks` (extra attack runs on a subset).
        naive: for a defended model (``create_defense(...).wrap(model)``), also run the
            attacks with every defense's true gradients and record that robust accuracy,
            which shows how much robustness a naive evaluation would falsely report.
        detector: a calibrated detector (``create_defense("feature-squeezing").detector(model)``);
            the result records how often it flags the clean inputs and the adversarial examples found.
        checkpoint: a state file rewritten atomically after every batch; with ``resume``, a run
            killed at any point continues from it and ends with the same per-sample results.
            The file stays after success (the command line deletes it once the result is written).

    Returns:
        An :class:`~robust.result.Evaluation`; robust accuracy is the per-sample worst case.
    """
    levels = eps_levels(eps)
    eps = levels[-1]
    model = _classifier(model, device)
    x, y, name = collect(data)
    data = ArrayDataset(x, y, name)
    path = Path(checkpoint) if checkpoint else None
    if resume and path is None:
        raise RobustError("resume=True continues from a checkpoint file: pass checkpoint=PATH")
    state = RunState(path, resume, fingerprint(model, x, y) if path is not None else "")
    result = run_evaluation(model, data, attacks, eps=eps, norm=norm, batch_size=batch_size, seed=seed, state=state,
                            cascade=cascade, progress=progress, command=command, checks=checks, detector=detector)[0]
    if len(levels) > 1:
        others = [run_evaluation(model, data, attacks, eps=e, norm=norm, batch_size=batch_size, seed=seed, state=state,
                                 cascade=cascade, progress=progress, command=command)[0] for e in levels[:-1]]
        result.sweep = [{"eps": r.eps, "robust_accuracy": r.robust_accuracy,
                         "attacks": [{"name": a.name, "framework": a.framework, "robust_accuracy": a.robust_accuracy}
                                     for a in r.attacks]} for r in [*others, result]]
    if naive and isinstance(model, Classifier) and defense_chain(model):
        other = run_evaluation(naive_model(model), data, attacks, eps=eps, norm=norm, batch_size=batch_size,
                               seed=seed, state=state, cascade=cascade, progress=progress, command=command)[0]
        result.naive = {
            "robust_accuracy": other.robust_accuracy, "defenses": other.defenses,
            "attacks": [{"name": a.name, "framework": a.framework, "robust_accuracy": a.robust_accuracy,
                         "success_rate": a.success_rate} for a in other.attacks],
        }
    return result


def run_evaluation(
    model: nn.Module | str, data: Data | str, attacks: Sequence[str | Attack] | str | Attack, *, eps: float,
    norm: str = "linf", batch_size: int | str = 256, device: str | torch.device | None = None, seed: int = 0,
    cascade: bool = True, progress: bool = False, command: str | None = None, checks: bool = False,
    detector: Any = None, state: RunState | None = None,
) -> tuple[Evaluation, list[torch.Tensor]]:
    """:func:`evaluate`, also returning per attack the mask of points it broke within eps."""
    clf = _classifier(model, device)
    x, y, dataset_name = collect(data)
    size = _batch_size(batch_size, clf, len(x))
    _check_settings(eps, norm, size)
    state = state if state is not None else RunState()
    runs = [_resolve_attack(a, norm) for a in ([attacks] if isinstance(attacks, (str, Attack)) else attacks)]
    clf.check_inputs(x)
    try:
        clean_pred = clf.predict(x, min(size, 4096)).cpu()
    except (RuntimeError, ValueError, TypeError) as exc:
        if isinstance(exc, RobustError):
            raise
        raise RobustError(f"the model failed on inputs of shape {tuple(x.shape[1:])}: {str(exc).splitlines()[0]}") from exc
    if int(y.min()) < 0 or int(y.max()) >= int(clf.num_classes or 0):
        raise RobustError(f"labels lie in [{int(y.min())}, {int(y.max())}], but the model has {clf.num_classes} classes")
    correct = clean_pred == y
    robust = correct.clone()
    broken_by: list[str | None] = [None] * len(y)
    found = Distances.empty(len(y))
    summaries, masks = [], []
    picks: dict[int, tuple[str, torch.Tensor]] = {}
    adversarial: dict[int, torch.Tensor] = {}
    keep = len(y) if detector is not None else EXAMPLES
    for i, attack in enumerate(runs):
        pool = robust if cascade else correct
        summary, outcome = _run_attack(clf, attack, x, y, pool, eps, norm, Batches(size), seed + 1000 * i, progress,
                                       keep, state)
        newly = outcome.within(eps, norm)
        masks.append(newly)
        label = attack.name if attack.framework == "robust" else f"{attack.name} ({attack.framework})"
        for j in (newly & robust).nonzero().flatten().tolist():
            broken_by[j] = label
            if j in outcome.kept:
                adversarial[j] = outcome.kept[j]
                if len(picks) < EXAMPLES:
                    picks[j] = (label, outcome.kept[j])
        found.keep_smaller(outcome)
        robust &= ~newly
        summary.robust_accuracy = float((robust if cascade else correct & ~newly).float().mean())
        summaries.append(summary)
    flags = []
    if checks and state.rank == 0:
        from robust.checks import run_checks

        flags = run_checks(clf, x[correct], y[correct], eps=eps, norm=norm, seed=seed, attacks=runs,
                           broken_by=[b for b, c in zip(broken_by, correct.tolist()) if c])
    detection = None
    if detector is not None:
        x_adv = torch.stack(list(adversarial.values())) if adversarial else x[:0]
        detection = detection_summary(detector, x[correct], x_adv)
    return Evaluation(
        defenses=[d.describe() for d in defense_chain(clf)], detection=detection, model=clf.name, dataset=dataset_name, n=len(y), eps=float(eps), norm=norm, seed=seed,
        clean_accuracy=float(correct.float().mean()), robust_accuracy=float(robust.float().mean()),
        attacks=summaries, samples=_samples(y, clean_pred, broken_by, found), cascade=cascade,
        environment=environment(clf.device, command), checks=flags, examples=build_examples(clf, x, y, picks),
    ), masks


def _run_attack(
    clf: Classifier, attack: Attack, x: torch.Tensor, y: torch.Tensor, pool: torch.Tensor, eps: float, norm: str,
    plan: Batches, seed: int, progress: bool, keep: int, state: RunState,
) -> tuple[AttackSummary, Distances]:
    """Run one attack on the points in ``pool``; return its summary and the perturbations it found.

    Minimization attacks run without eps, so the distance they found is kept even beyond eps.
    """
    idx = pool.nonzero().flatten()
    batches = plan.cut(idx)
    key = run_key(attack, eps, seed, idx, clf)
    mine = state.mine(len(batches))
    with PeakMemory(clf.device) as memory:
        for b in progress_bar(mine, len(mine), attack.name, progress):
            if state.get(key, b) is None:
                outcome = run_batch(clf, attack, x, y, batches[b], eps=eps, norm=norm, seed=seed + b, keep=keep,
                                    plan=plan)
                state.put(key, b, outcome)
    parts = state.gather(key, len(batches))
    found = Distances.empty(len(y))
    for part in parts:
        found.l2[part.points], found.linf[part.points] = part.l2, part.linf
        for j, image in part.kept.items():
            if len(found.kept) < keep:
                found.kept[j] = image
    broken = int(found.within(eps, norm).sum())
    hits = ~torch.isnan(found.l2)
    summary = AttackSummary(
        name=attack.name, framework=attack.framework, params=_jsonable(attack.params), robust_accuracy=float("nan"),
        success_rate=broken / max(len(idx), 1), median_l2=_median(found.l2[hits]),
        median_linf=_median(found.linf[hits]), seconds=sum(p.seconds for p in parts),
        forward_passes=sum(p.forward for p in parts), backward_passes=sum(p.backward for p in parts),
        attacked=len(idx), broken=broken, violations=sum(p.violations for p in parts),
        mean_l2=_mean(found.l2[hits]), mean_linf=_mean(found.linf[hits]), peak_memory_mb=memory.mib,
    )
    log.info("%s broke %d of %d points in %.2f s", attack.name, broken, len(idx), summary.seconds)
    return summary, found


def _batch_size(batch_size: int | str, model: Classifier, n: int) -> int:
    """``"auto"``: the whole set at once on CUDA (halved on out-of-memory errors), 256 on the CPU."""
    if batch_size == "auto":
        return max(1, min(n, 16384)) if model.device.type == "cuda" else 256
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise RobustError(f"batch size must be a positive integer or 'auto', got {batch_size!r}")
    return batch_size


def eps_levels(eps: float | Sequence[float]) -> list[float]:
    """One budget or several, validated, sorted and without duplicates."""
    values: list[Any] = list(eps) if isinstance(eps, (list, tuple)) else [eps]
    if not values:
        raise RobustError("give at least one eps")
    for value in values:
        _check_settings(value, "linf", 1)
    return sorted({float(v) for v in values})


def _check_settings(eps: float, norm: str, batch_size: int) -> None:
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 <= eps < float("inf"):
        raise RobustError(f"eps must be a finite number >= 0, got {eps!r}")
    if norm not in ("linf", "l2"):
        raise RobustError(f"norm must be linf or l2, got {norm!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise RobustError(f"batch size must be a positive integer, got {batch_size!r}")


def _resolve_attack(attack: str | Attack, norm: str) -> Attack:
    """An attack object for this evaluation's norm; a name is created with ``norm``."""
    if isinstance(attack, str):
        attack = create_attack(attack)
    if not isinstance(attack, Attack):
        raise RobustError(f"attacks must be names or Attack objects, got {type(attack).__name__}")
    given = attack.given.get("norm")
    if given is not None and given != norm:
        raise RobustError(f"attack {attack.name!r} is configured for norm {given!r} but the evaluation uses {norm!r}")
    return attack.with_params(norm=norm) if "norm" in attack.defaults else attack


def _classifier(model: nn.Module | str, device: str | torch.device | None) -> Classifier:
    if isinstance(model, str):
        from robust.loaders import load_model

        return load_model(model, device=device)
    if isinstance(model, Classifier):
        return model
    if isinstance(model, nn.Module):
        return Classifier(model, device=resolve_device(device))
    raise RobustError(f"model must be a torch.nn.Module or a model name, got {type(model).__name__}")


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


def _median(values: torch.Tensor) -> float | None:
    return float(values.median()) if len(values) else None


def _mean(values: torch.Tensor) -> float | None:
    return float(values.mean()) if len(values) else None


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if isinstance(v, (int, float, str, bool, type(None))) else repr(v)) for k, v in params.items()}
