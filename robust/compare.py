"""The same attack through robust, ART and Foolbox, every output verified in one place.

Each framework's output is checked by the harness in verify mode: the model is re-run,
norms are recomputed, and a sample outside the bounds or the eps ball counts as a
violation, never as a success. Success and robust accuracy come from that check alone.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import torch
from torch import nn

from robust import frameworks as fw
from robust.attack import Attack
from robust.errors import RobustError
from robust.evaluation import Data, run_evaluation
from robust.model import Classifier
from robust.registry import ATTACKS
from robust.result import Evaluation


PIP_NAMES = {"robust": "robust", "art": "adversarial-robustness-toolbox", "foolbox": "foolbox"}


class ExternalAttack(Attack):
    """Another framework's implementation of one of our attacks, configured with our parameters.

    Subclasses are made by :func:`external_attack`; ``run`` calls the framework and returns
    its raw output, which the harness verifies without repairing it.
    """

    verify_only = True

    def run(self, model: Classifier, x: torch.Tensor, y: torch.Tensor, *, eps: float | None, targeted: bool,
            generator: torch.Generator) -> torch.Tensor:
        runner = fw.make_runner(self.framework, self.name, self.params, norm=self.norm, eps=eps, targeted=targeted)
        seed = int(torch.randint(2**31 - 1, (1,), generator=generator, device=generator.device))
        state = np.random.get_state()
        try:  # the frameworks draw from the global generators: seed them, then put them back
            with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
                torch.manual_seed(seed)
                np.random.seed(seed)
                return runner(model, x, y)
        except fw.FrameworkRefused as exc:
            warnings.warn(f"{exc}; its outputs for this batch of {len(x)} count as failures", stacklevel=2)
            return x
        finally:
            np.random.set_state(state)


def external_attack(framework: str, name: str, **params: Any) -> Attack:
    """``name`` as implemented by ``framework`` ("robust", "art" or "foolbox")."""
    if framework not in fw.FRAMEWORKS:
        raise RobustError(f"unknown framework {framework!r}; use one of {', '.join(fw.FRAMEWORKS)}")
    ours = ATTACKS.get(name)
    if framework == "robust":
        attack: Attack = ours(**params)
        return attack
    cls = type(f"{framework.capitalize()}{ours.__name__}", (ExternalAttack,), {
        "name": name, "framework": framework, "defaults": dict(ours.defaults), "norms": ours.norms,
        "needs_eps": ours.needs_eps, "__doc__": f"{ours.__name__} as implemented by {framework}, verified by robust.",
    })
    external: Attack = cls(**params)
    return external


def compare(
    model: nn.Module | str,
    data: Data | str,
    attacks: Sequence[str | Attack],
    *,
    frameworks: Sequence[str] = fw.FRAMEWORKS,
    eps: float,
    norm: str = "linf",
    batch_size: int = 256,
    device: str | torch.device | None = None,
    seed: int = 0,
    progress: bool = False,
    command: str | None = None,
) -> Evaluation:
    """Run each attack through each framework on the same points and compare the verified results.

    Every framework attacks every correctly classified point (no cascade). A framework that
    is not installed is skipped with a warning and listed under ``comparison["missing"]``.

    Returns:
        An :class:`~robust.result.Evaluation` whose ``attacks`` hold one entry per (attack,
        framework) and whose ``comparison`` holds versions, parameter mappings, per-sample
        agreement between each pair of frameworks, and the capability matrix.
    """
    unknown = [f for f in frameworks if f not in fw.FRAMEWORKS]
    if unknown:
        raise RobustError(f"unknown framework {unknown[0]!r}; use one of {', '.join(fw.FRAMEWORKS)}")
    versions = {f: fw.version(f) for f in frameworks}
    missing = [f for f, v in versions.items() if v is None]
    for f in missing:
        warnings.warn(f"{f} is not installed: it is left out of the comparison (pip install {PIP_NAMES[f]})", stacklevel=2)
    runs, skipped, mapping = _plan(attacks, [f for f in frameworks if f not in missing], norm)
    if not runs:
        raise RobustError("nothing to compare: no installed framework offers these attacks")
    result, masks = run_evaluation(model, data, runs, eps=eps, norm=norm, batch_size=batch_size, device=device,
                                   seed=seed, cascade=False, progress=progress, command=command)
    correct = torch.tensor([s["label"] == s["clean_prediction"] for s in result.samples])
    result.comparison = {
        "frameworks": {f: v for f, v in versions.items() if v is not None}, "missing": missing, "skipped": skipped,
        "mapping": mapping, "agreement": _agreement(runs, masks, correct), "capabilities": fw.capabilities(),
    }
    return result


def _plan(attacks: Sequence[str | Attack], frameworks: list[str], norm: str
          ) -> tuple[list[Attack], list[dict[str, str]], dict[str, dict[str, list[dict[str, Any]]]]]:
    runs: list[Attack] = []
    skipped: list[dict[str, str]] = []
    mapping: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for spec in attacks:
        name, params = (spec, {}) if isinstance(spec, str) else (spec.name, spec.given)
        params = {**params, "norm": params.get("norm") or norm} if "norm" in ATTACKS.get(name).defaults else params
        for framework in frameworks:
            if framework != "robust" and not fw.supports(framework, name, norm):
                skipped.append({"attack": name, "framework": framework, "reason": f"{framework} has no {norm} {name}"})
                continue
            runs.append(external_attack(framework, name, **params))
            if framework != "robust":
                mapping.setdefault(name, {})[framework] = [asdict(row) for row in fw.mapping(framework, name, norm)]
    return runs, skipped, mapping


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
    """Plain-text tables of a comparison result (per attack and framework, then agreement)."""
    head = ("attack", "framework", "robust acc", "success", f"median {result['norm']}", f"mean {result['norm']}",
            "seconds", "img/s", "violations")
    rows: list[tuple[str, ...]] = []
    for a in result["attacks"]:
        med, mean = (a["median_l2"], a["mean_l2"]) if result["norm"] == "l2" else (a["median_linf"], a["mean_linf"])
        rate = a["attacked"] / a["seconds"] if a["seconds"] > 0 else float("nan")
        rows.append((a["name"], a["framework"], f"{a['robust_accuracy']:.2%}", f"{a['success_rate']:.2%}", _f(med),
                     _f(mean), f"{a['seconds']:.2f}", f"{rate:.0f}", str(a["violations"])))
    lines = _grid(head, rows)
    agreement = (result.get("comparison") or {}).get("agreement", [])
    if agreement:
        pairs = [(r["attack"], f"{r['a']} vs {r['b']}", str(r["both"]), str(r["only_a"]), str(r["only_b"]),
                  str(r["neither"])) for r in agreement]
        lines += ["", *_grid(("attack", "pair", "both fooled", "only first", "only second", "neither"), pairs)]
    return "\n".join(lines)


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _grid(head: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    out = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head, *rows]]
    out.insert(1, "  ".join("-" * w for w in widths))
    return out
