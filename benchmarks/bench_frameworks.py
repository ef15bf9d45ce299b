"""Every installed framework against ours, attack by attack: strength, optimality, time and passes.

For each zoo model and norm (``--norms l2,linf`` by default; ``l1`` and ``l0`` compare FMN),
one ``robust.compare(model, (x, y), ATTACKS[norm], frameworks="all")``
on the same MNIST test images runs each attack through every installed framework that offers
it (robust, ART, Foolbox, AutoAttack, torchattacks, adv-lib, CleverHans), with the same
mapped hyperparameters; every output is verified by our harness. Reported per run: robust
accuracy at eps, median distance, optimality (minimal-norm attacks, AttackBench's definition,
against the per-point best over every run of that model and norm), seconds and forward +
backward passes per attacked point, counted by the model.

Targets, per model and norm:

* robust's best minimal-norm attack has the highest optimality of the comparison;
* each of our attacks is at least as strong as the same attack in every other framework
  (robust accuracy no higher, optimality no lower, both up to ``--tolerance``), in no more
  time than the fastest of them.

Run ``python benchmarks/bench_frameworks.py --help`` for the flags.
"""

from __future__ import annotations

import argparse
import time
import warnings
from typing import Any

import torch

import robust
from common import add_run_args, describe, device_info, markdown_table, save_results, script_logger, setup_device
from robust.comparison import compare
from robust.data import load_dataset

log = script_logger("bench_frameworks")
ATTACKS = {  # DeepFool runs in Linf only: torchattacks' (L2 only) loops over the batch in Python
    "l2": ["cw:steps=20,binary_search_steps=1,initial_const=1,lr=0.1", "ddn:steps=100", "fmn:steps=100", "fgsm", "pgd:steps=20",
           "mi-fgsm", "apgd:steps=50"],
    "linf": ["deepfool:steps=50", "fmn:steps=100", "fgsm", "pgd:steps=20", "mi-fgsm", "apgd:steps=50",
             "apgd-t:steps=50"],
    "l1": ["fmn:steps=100"],  # the one attack in L1 and L0 that the frameworks share
    "l0": ["fmn:steps=100"],
}
EPS = {("cnn", "l2"): 1.5, ("cnn", "linf"): 0.1, ("cnn-at", "l2"): 2.0, ("cnn-at", "linf"): 0.3,
       ("cnn", "l1"): 6.0, ("cnn-at", "l1"): 12.0, ("cnn", "l0"): 8.0, ("cnn-at", "l0"): 50.0}


def run_one(model_name: str, norm: str, args: argparse.Namespace, device: torch.device, seed: int) -> dict[str, Any]:
    model = robust.load_model(model_name, device=str(device))
    data = load_dataset("mnist", n=args.n)
    eps = EPS.get((model_name, norm), {"linf": 0.3, "l2": 1.5, "l1": 10.0, "l0": 12.0}[norm])
    attacks = selected(norm, args)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = compare(model, data, attacks, frameworks="all", eps=eps, norm=norm,
                         batch_size=args.batch_size, seed=seed)
    notes = sorted({str(w.message) for w in caught if issubclass(w.category, UserWarning)})
    assert result.comparison is not None
    scores = {(r["attack"], r["framework"]): r["optimality"] for r in result.comparison["optimality"]["runs"]}
    runs = [{
        "attack": a.name, "framework": a.framework, "robust_accuracy": a.robust_accuracy,
        "median": a.median(norm), "optimality": scores.get((a.name, a.framework)),
        "seconds": a.seconds, "passes_per_sample": round(a.forwards_per_sample + a.backwards_per_sample, 1),
        "violations": a.violations} for a in result.attacks]
    return {"model": model_name, "norm": norm, "eps": eps, "n": args.n, "clean_accuracy": result.clean_accuracy,
            "frameworks": result.comparison["frameworks"], "missing": result.comparison["missing"],
            "seeds": [seed], "wall_seconds": round(time.perf_counter() - start, 1), "runs": runs, "notes": notes,
            "targets": targets(runs, args.tolerance)}


def selected(norm: str, args: argparse.Namespace) -> list[str]:
    """The attacks of ``norm`` that ``--attacks`` names (all of them without it)."""
    return [a for a in ATTACKS[norm] if not args.attacks or a.split(":")[0] in args.attacks.split(",")]


def over_seeds(entries: list[dict[str, Any]], tolerance: float) -> dict[str, Any]:
    """One entry from the same model and norm run with several seeds: every figure of a run is
    the mean over the seeds (optimality against each seed's own per-point best), and
    ``robust_accuracy_per_seed`` lists the seeds' robust accuracies."""
    merged = dict(entries[0], seeds=[s for e in entries for s in e["seeds"]],
                  wall_seconds=round(sum(e["wall_seconds"] for e in entries), 1))
    runs = []
    for i, first in enumerate(entries[0]["runs"]):
        same = [e["runs"][i] for e in entries]
        run = dict(first, robust_accuracy_per_seed=[r["robust_accuracy"] for r in same])
        for key in ("robust_accuracy", "median", "optimality", "seconds", "passes_per_sample"):
            values = [r[key] for r in same]
            run[key] = None if None in values else sum(values) / len(values)
        runs.append(run)
    merged["runs"], merged["targets"] = runs, targets(runs, tolerance)
    return merged


def targets(runs: list[dict[str, Any]], tolerance: float) -> dict[str, Any]:
    """Whether ours leads on optimality, and per attack where another framework beats ours."""
    best: dict[str, float] = {}
    for r in runs:
        if r["optimality"] is not None:
            best[r["framework"]] = max(best.get(r["framework"], 0.0), r["optimality"])
    leader = max(best, key=lambda f: best[f]) if best else None
    behind = []
    for r in runs:
        if r["framework"] != "robust":
            continue
        others = [o for o in runs if o["attack"] == r["attack"] and o["framework"] != "robust"]
        for o in others:
            if o["robust_accuracy"] < r["robust_accuracy"] - tolerance:
                behind.append(f"{r['attack']}: {o['framework']} leaves {o['robust_accuracy']:.1%}, ours "
                              f"{r['robust_accuracy']:.1%}")
            if o["optimality"] is not None and r["optimality"] is not None and \
                    o["optimality"] > r["optimality"] + tolerance:
                behind.append(f"{r['attack']}: {o['framework']} optimality {o['optimality']:.3f}, ours "
                              f"{r['optimality']:.3f}")
        fastest = min((o["seconds"] for o in others), default=None)
        if fastest is not None and r["seconds"] > fastest:
            behind.append(f"{r['attack']}: ours {r['seconds']:.2f} s, fastest other {fastest:.2f} s")
    return {"best_optimality": best, "leader": leader, "ours_leads": leader == "robust", "behind": behind}


def grid(entry: dict[str, Any]) -> str:
    """Attacks as rows, frameworks as columns: robust accuracy / median / optimality / seconds / passes."""
    frameworks = list(dict.fromkeys(r["framework"] for r in entry["runs"]))
    cells: dict[str, dict[str, str]] = {}
    for r in entry["runs"]:
        med = "-" if r["median"] is None else f"{r['median']:.3f}"
        opt = "" if r["optimality"] is None else f" / {r['optimality']:.3f}"
        seeds = r.get("robust_accuracy_per_seed", [])
        spread = f" ({', '.join(f'{100 * a:.1f}' for a in seeds)})" if len(seeds) > 1 else ""
        cells.setdefault(r["attack"], {})[r["framework"]] = (
            f"{r['robust_accuracy']:.1%}{spread} / {med}{opt} / {r['seconds']:.2f} s / {r['passes_per_sample']:.0f}")
    rows = [[name, *(row.get(f, "") for f in frameworks)] for name, row in cells.items()]
    return markdown_table(["attack", *frameworks], rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="cnn,cnn-at", help="zoo models, comma-separated")
    p.add_argument("--norms", default="l2,linf", help="norms, comma-separated")
    p.add_argument("--n", type=int, default=100, help="MNIST test images")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--seed", type=int, default=0, help="the first seed")
    p.add_argument("--seeds", type=int, default=1, help="run every cell with this many seeds and report the means")
    p.add_argument("--attacks", default="", help="only these attacks (names, comma-separated; default: all)")
    p.add_argument("--tolerance", type=float, default=0.01, help="robust accuracy / optimality slack in the targets")
    add_run_args(p, "frameworks")
    args = p.parse_args()
    known = {a.split(":")[0] for specs in ATTACKS.values() for a in specs}
    unknown = sorted(set(filter(None, args.attacks.split(","))) - known)
    if unknown:
        p.error(f"--attacks: unknown {', '.join(unknown)}; choose from {', '.join(sorted(known))}")
    bad_norms = sorted(set(args.norms.split(",")) - set(ATTACKS))
    if bad_norms:
        p.error(f"--norms: unknown {', '.join(bad_norms)}; choose from {', '.join(ATTACKS)}")
    if args.seeds < 1:
        p.error(f"--seeds must be at least 1, got {args.seeds}")
    device = setup_device(args.device, args.threads)
    info = device_info(device)
    log.info("%s", describe(info))
    entries = []
    for model_name in args.models.split(","):
        for norm in args.norms.split(","):
            if not selected(norm, args):
                log.info("%s, %s: none of --attacks runs in this norm; skipped", model_name, norm)
                continue
            seeds = [run_one(model_name, norm, args, device, args.seed + k) for k in range(args.seeds)]
            entry = over_seeds(seeds, args.tolerance) if len(seeds) > 1 else seeds[0]
            entries.append(entry)
            print(f"\n{model_name}, {norm} eps {entry['eps']}, {entry['n']} images, seeds {entry['seeds']} "
                  f"(clean {entry['clean_accuracy']:.1%}); cell: robust accuracy / median {norm} / optimality / "
                  f"seconds / passes per point")
            print(grid(entry))
            t = entry["targets"]
            print(f"best optimality per framework: {t['best_optimality']}; leader: {t['leader']}")
            for line in t["behind"]:
                print(f"  behind: {line}")
    save_results(args, "frameworks", {"entries": entries}, info)


if __name__ == "__main__":
    main()
