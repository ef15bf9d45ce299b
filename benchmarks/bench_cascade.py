"""A whole evaluation on the zoo ``resnet``: the five-attack cascade against every attack on every point.

Both runs call ``robust.evaluate(model, (x, y), attacks, eps=2.0, norm="l2", ...)`` on the
same MNIST test images with the same attacks, in this order: FGSM, PGD-20, DeepFool (50
steps), CW L2 (100 steps, 3 binary-search steps, initial constant 1, lr 0.1) and Boundary
(500 queries). ``cascade=True`` hands each attack only the points that every earlier attack
failed on; ``cascade=False`` runs every attack on every correctly classified point. Both
report the per-sample worst case over the five attacks as robust accuracy.

Reported per mode: total attack time (the sum of ``Evaluation.attacks[i].seconds``), the
wall time of the whole ``evaluate`` call, batched forward and backward passes, and robust
accuracy; and the ratio cascade / all (target: at most 0.5). The worst-case accuracies
should agree; where they do not, the points that differ are listed with the attack that
broke them (PGD's and Boundary's random draws are seeded per batch, and a batch holds
different points in the two modes).

Run ``python benchmarks/bench_cascade.py --help`` for the flags.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import torch

import robust
from common import (
    add_run_args,
    save_results,
    describe, device_info, fmt_seconds, markdown_table, median, paired_ratios, script_logger, setup_device,
    time_interleaved,
)

log = script_logger("bench_cascade")
MODES = ("all", "cascade")  # "all" first: the baseline of the ratios
TARGET = 0.5


def attacks(args: argparse.Namespace, cheap: bool = False) -> list[robust.Attack]:
    """The five attacks in cascade order; ``cheap`` gives one- or two-step stand-ins for warming up."""
    return [
        robust.create_attack("fgsm"),
        robust.create_attack("pgd", steps=2 if cheap else args.pgd_steps),
        robust.create_attack("deepfool", steps=2 if cheap else args.deepfool_steps),
        robust.create_attack("cw", steps=2 if cheap else args.cw_steps,
                             binary_search_steps=1 if cheap else args.cw_searches,
                             initial_const=args.cw_const, lr=args.cw_lr),
        robust.create_attack("boundary", max_queries=120 if cheap else args.boundary_queries),
    ]


def runner(model: robust.Classifier, x: torch.Tensor, y: torch.Tensor, args: argparse.Namespace, cascade: bool,
           runs: list[robust.Evaluation] | None, cheap: bool = False) -> Callable[[], robust.Evaluation]:
    """One whole evaluation; each result is also appended to ``runs`` (one per timed round)."""
    batch: int | str = args.batch_size if args.batch_size == "auto" else int(args.batch_size)

    def run() -> robust.Evaluation:
        result = robust.evaluate(model, (x, y), attacks(args, cheap), eps=args.eps, norm="l2", batch_size=batch,
                                 cascade=cascade, seed=args.seed)
        if runs is not None:
            runs.append(result)
        return result
    return run


def robust_mask(result: robust.Evaluation) -> list[bool]:
    """Per sample: classified correctly and broken by no attack within eps."""
    return [s["label"] == s["clean_prediction"] and s["broken_by"] is None for s in result.samples]


def summarize(mode: str, result: robust.Evaluation, wall: list[float], attack_s: list[float],
              ratio: dict[str, float]) -> dict[str, Any]:
    """One mode's row: medians over rounds, pass totals and accuracies of its first timed run."""
    return {
        "mode": mode, "attack_seconds": median(attack_s), "attack_seconds_all": attack_s,
        "wall_seconds": median(wall), "wall_seconds_all": wall,
        "ratio_attack_time_to_all": ratio["attack"], "ratio_wall_to_all": ratio["wall"],
        "points_attacked": sum(a.attacked for a in result.attacks),
        "forward_passes": sum(a.forward_passes for a in result.attacks),
        "backward_passes": sum(a.backward_passes for a in result.attacks),
        "clean_accuracy": result.clean_accuracy, "robust_accuracy": result.robust_accuracy,
        "attacks": [{"name": a.name, "params": a.params, "attacked": a.attacked, "broken": a.broken,
                     "seconds": a.seconds, "forward_passes": a.forward_passes, "backward_passes": a.backward_passes,
                     "robust_accuracy_after": a.robust_accuracy} for a in result.attacks],
    }


def agreement(runs: dict[str, list[robust.Evaluation]]) -> dict[str, Any]:
    """Where the two worst cases differ, which points and which attack broke them in the other mode."""
    first = {m: runs[m][0] for m in MODES}
    masks = {m: robust_mask(first[m]) for m in MODES}
    differ = [i for i, (a, c) in enumerate(zip(masks["all"], masks["cascade"])) if a != c]
    return {
        "agree": not differ, "points_differing": len(differ),
        "differing": [{"index": i, "robust_in": "all" if masks["all"][i] else "cascade",
                       "broken_in_other_by": first["cascade" if masks["all"][i] else "all"].samples[i]["broken_by"]}
                      for i in differ],
        "same_every_round": {m: len({r.robust_accuracy for r in runs[m]}) == 1 for m in MODES},
    }


def tables(rows: list[dict[str, Any]], label: str) -> str:
    """The summary table and the per-attack table, each headed by the device."""
    head = ["mode", "points attacked", "attack time", "x all", "evaluate wall", "forward passes", "backward passes",
            "robust acc"]
    body = [[r["mode"], r["points_attacked"], fmt_seconds(r["attack_seconds"]), f"{r['ratio_attack_time_to_all']:.3f}x",
             fmt_seconds(r["wall_seconds"]), r["forward_passes"], r["backward_passes"], f"{r['robust_accuracy']:.1%}"]
            for r in rows]
    per_head = ["attack"] + [f"{m}: {c}" for m in MODES for c in ("attacked", "broken", "seconds", "fwd / bwd")]
    per_body = []
    for k, first in enumerate(rows[0]["attacks"]):
        cells = [first["name"]]
        for r in rows:
            a = r["attacks"][k]
            cells += [a["attacked"], a["broken"], fmt_seconds(a["seconds"]), f"{a['forward_passes']} / {a['backward_passes']}"]
        per_body.append(cells)
    return (f"Device: {label}\n\n" + markdown_table(head, body, "lrrrrrrr") + f"\n\nPer attack, {label}:\n\n"
            + markdown_table(per_head, per_body, "l" + "r" * 8))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see ``--help``); device-dependent defaults are filled in by :func:`main`."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=None, help="MNIST test images (default 200 on the CPU, 2000 on CUDA)")
    p.add_argument("--eps", type=float, default=2.0, help="L2 budget (default 2.0)")
    p.add_argument("--batch-size", default=None, help="evaluate's batch_size (default 256 on the CPU, auto on CUDA)")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed rounds per mode (default 1 on the CPU, 3 on CUDA; 1 with --quick)")
    p.add_argument("--quick", action="store_true", help="64 images, 1 round, results to section 'cascade-quick'")
    p.add_argument("--pgd-steps", type=int, default=20, help="PGD steps (default 20)")
    p.add_argument("--deepfool-steps", type=int, default=50, help="DeepFool steps (default 50)")
    p.add_argument("--cw-steps", type=int, default=100, help="CW Adam steps per binary-search step (default 100)")
    p.add_argument("--cw-searches", type=int, default=3, help="CW binary-search steps (default 3)")
    p.add_argument("--cw-const", type=float, default=1.0, help="CW initial constant (default 1)")
    p.add_argument("--cw-lr", type=float, default=0.1, help="CW Adam step size (default 0.1)")
    p.add_argument("--boundary-queries", type=int, default=500, help="Boundary queries per sample (default 500)")
    p.add_argument("--seed", type=int, default=0, help="evaluate's seed (default 0)")
    add_run_args(p, "cascade")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Time both modes in interleaved rounds, print the tables and merge the figures into the results JSON."""
    args = parse_args(argv)
    device = setup_device(args.device, args.threads)
    cuda = device.type == "cuda"
    args.n = args.n or (64 if args.quick else 2000 if cuda else 200)
    args.batch_size = args.batch_size or ("auto" if cuda else "256")
    repeats = args.repeats or (1 if args.quick or not cuda else 3)
    info = device_info(device)
    label = describe(info)
    start = time.perf_counter()
    model = robust.load_model("resnet", device=device)
    data = robust.load_dataset("mnist", n=args.n)
    x, y = data.x[:args.n], data.y[:args.n]
    runs: dict[str, list[robust.Evaluation]] = {m: [] for m in MODES}
    cases = {m: runner(model, x, y, args, m == "cascade", runs[m]) for m in MODES}
    stand_ins = {m: runner(model, x[:16], y[:16], args, m == "cascade", None, cheap=True) for m in MODES}
    log.info("%d images, eps %g (L2), %d timed round(s) per mode on %s", len(x), args.eps, repeats, label)
    wall, _ = time_interleaved(cases, device, repeats=repeats, warmup=1, warmup_cases=stand_ins)
    attack_s = {m: [sum(a.seconds for a in r.attacks) for r in runs[m]] for m in MODES}
    ratios = {"wall": paired_ratios(wall, "all"), "attack": paired_ratios(attack_s, "all")}
    rows = [summarize(m, runs[m][0], wall[m], attack_s[m], {k: v[m] for k, v in ratios.items()}) for m in MODES]
    agree = agreement(runs)
    elapsed = time.perf_counter() - start
    ratio = rows[1]["ratio_attack_time_to_all"]
    print(f"\n{len(x)} MNIST test images, zoo resnet, L2 eps {args.eps:g}, batch size {args.batch_size}, "
          f"{repeats} timed round(s) per mode\n\n{tables(rows, label)}\n")
    print(f"Cascade / all, total attack time: {ratio:.3f}x (target <= {TARGET}x: {'met' if ratio <= TARGET else 'NOT met'}), "
          f"{label}.")
    if agree["agree"]:
        print(f"Worst-case robust accuracy agrees: {rows[0]['robust_accuracy']:.1%} in both modes, every point alike.")
    else:
        print(f"Worst-case robust accuracy differs: all {rows[0]['robust_accuracy']:.1%}, cascade "
              f"{rows[1]['robust_accuracy']:.1%}, on {agree['points_differing']} point(s): {agree['differing']}. "
              "PGD's random start and Boundary's draws are seeded per batch, and a cascade batch holds only the "
              "points still robust, so the same point gets different noise in the two modes.")
    varied = [m for m, same in agree["same_every_round"].items() if not same]
    if varied:
        print(f"Robust accuracy varied between rounds in: {', '.join(varied)} (the first timed round is reported).")
    print(f"attack time: sum of Evaluation.attacks[i].seconds, median over rounds; x all: median over rounds of "
          f"(cascade / all) in the same round; passes are batched passes. Total {elapsed:.0f} s.")
    config = {k: v for k, v in vars(args).items() if k not in ("no_write", "section")}
    save_results(args, "cascade", {
        "config": {**config, "model": "resnet", "norm": "l2", "timed_rounds": repeats,
                   "warmup": "one untimed round per mode on 16 images with one- or two-step attacks",
                   "torch_threads": torch.get_num_threads()},
        "total_seconds": elapsed, "rows": rows, "agreement": agree}, info)


if __name__ == "__main__":
    main()
