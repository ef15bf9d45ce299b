"""robust's ``standard`` preset against the official AutoAttack (pyautoattack), side by side.

On the same MNIST test images and the same adversarially trained zoo models, in one process:

1. pyautoattack's standard version (APGD-CE, APGD-T, FAB-T, Square 5000) through
   ``AutoAttack(...).run_standard_evaluation``, its outputs re-judged by the model;
2. ``robust.evaluate(model, (x, y), "standard", eps=...)``, the same cascade;
3. APGD-CE alone in both (100 steps, 1 restart), for the single-attack comparison.

Reported per model: robust accuracy and seconds of each, the time ratio ours / theirs in wall
time and in process CPU time (the CPU ratio holds when other work shares the machine)
(target: at most 0.25), the points that one breaks and the other does not (target: every
point AutoAttack breaks, ours breaks too; at most 1 in 500 may differ), each component's
robust accuracy and forward/backward passes per attacked point. For the points only AutoAttack
broke, each of our later components is run alone on them (without the screen and the prune,
and Square with them) over three seeds, to tell seed luck from a point the cost cuts lost. pyautoattack's standard run
is the long part (about 30 minutes for 500 images on a 2-core CPU): ``--n`` sets the images.

Run ``python benchmarks/bench_autoattack.py --help`` for the flags.
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

import torch

import robust
from common import add_run_args, describe, device_info, markdown_table, save_results, script_logger, setup_device

log = script_logger("bench_autoattack")
TARGET = 0.25


CPU_SECONDS: list[float] = []  # process CPU time of each of our runs, in order (immune to other load on the machine)


def theirs(model: robust.Classifier, x: torch.Tensor, y: torch.Tensor, eps: float, norm: str,
           components: list[str] | None, seed: int) -> tuple[torch.Tensor, float, dict[str, float]]:
    """Per-sample robustness after pyautoattack (standard version, or the given components), seconds, per-stage accuracy."""
    from pyautoattack import AutoAttack

    stages: dict[str, float] = {}

    class Stages(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            text = record.getMessage()
            if text.startswith("robust accuracy after "):
                name, value = text[len("robust accuracy after "):].split(":", 1)
                stages[name.strip().lower()] = float(value.split("%")[0]) / 100

    logger = logging.getLogger("auto-attack")
    handler = Stages()
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        net = model.module.eval()
        version = "standard" if components is None else "custom"
        attack = AutoAttack(net, eps=eps, norm="Linf" if norm == "linf" else "L2", version=version,
                            attacks=components, device=str(model.device), seed=seed)
        if components is not None:  # the custom version keeps APGD's constructor default of 5 restarts
            attack.apgd.n_restarts = 1
        start, cpu = time.perf_counter(), time.process_time()
        x_adv, _ = attack.run_standard_evaluation(x.to(model.device), y.to(model.device), batch_size=len(x))
        seconds = time.perf_counter() - start
        stages["cpu_seconds"] = time.process_time() - cpu
    finally:
        logger.removeHandler(handler)
    robust_now = model.predict(x_adv).cpu() == y
    return robust_now, seconds, stages


def ours(model: robust.Classifier, x: torch.Tensor, y: torch.Tensor, eps: float, norm: str, attack: str,
         seed: int) -> tuple[torch.Tensor, float, robust.Evaluation]:
    start, cpu = time.perf_counter(), time.process_time()
    result = robust.evaluate(model, (x, y), attack, eps=eps, norm=norm, batch_size=len(x), seed=seed)
    seconds = time.perf_counter() - start
    CPU_SECONDS.append(time.process_time() - cpu)
    robust_now = torch.tensor([s["broken_by"] is None and s["clean_prediction"] == s["label"] for s in result.samples])
    return robust_now, seconds, result


def compare_model(name: str, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    model = robust.load_model(name, device=device)
    data = robust.load_dataset("mnist", n=args.n)
    x, y = data.x, data.y
    entry: dict[str, Any] = {"model": name, "n": len(y), "eps": args.eps, "norm": args.norm}
    log.info("%s: APGD-CE alone, both", name)
    a_theirs, a_sec_theirs, a_stages = theirs(model, x, y, args.eps, args.norm, ["apgd-ce"], args.seed)
    a_ours, a_sec_ours, _ = ours(model, x, y, args.eps, args.norm, "apgd", args.seed)
    entry["apgd_ce"] = {"theirs": float(a_theirs.float().mean()), "ours": float(a_ours.float().mean()),
                        "seconds_theirs": a_sec_theirs, "seconds_ours": a_sec_ours,
                        "time_ratio": a_sec_ours / a_sec_theirs,
                        "cpu_time_ratio": CPU_SECONDS[-1] / a_stages.pop("cpu_seconds")}
    log.info("%s: standard, ours", name)
    s_ours, sec_ours, result = ours(model, x, y, args.eps, args.norm, "standard", args.seed)
    log.info("%s: standard, pyautoattack (the long part)", name)
    s_theirs, sec_theirs, stages = theirs(model, x, y, args.eps, args.norm, None, args.seed)
    cpu_theirs, cpu_ours = stages.pop("cpu_seconds"), CPU_SECONDS[-1]
    entry["standard"] = {
        "cpu_seconds_theirs": cpu_theirs, "cpu_seconds_ours": cpu_ours, "cpu_time_ratio": cpu_ours / cpu_theirs,
        "theirs": float(s_theirs.float().mean()), "ours": float(s_ours.float().mean()),
        "seconds_theirs": sec_theirs, "seconds_ours": sec_ours, "time_ratio": sec_ours / sec_theirs,
        "broken_by_theirs_only": (s_ours & ~s_theirs).nonzero().flatten().tolist(),
        "broken_by_ours_only": (s_theirs & ~s_ours).nonzero().flatten().tolist(),
        "stages_theirs": stages,
        "stages_ours": {a.name: {"robust_accuracy": a.robust_accuracy, "seconds": round(a.seconds, 2),
                                 "attacked": a.attacked, "forwards_per_sample": a.forwards_per_sample,
                                 "backwards_per_sample": a.backwards_per_sample} for a in result.attacks},
    }
    missed = entry["standard"]["broken_by_theirs_only"]
    if missed:
        log.info("%s: why ours missed %s", name, missed)
        entry["standard"]["missed"] = diagnose(model, x[missed], y[missed], args, missed)
    return entry


def diagnose(model: robust.Classifier, x: torch.Tensor, y: torch.Tensor, args: argparse.Namespace,
             index: list[int]) -> dict[str, Any]:
    """For the points only AutoAttack broke: which of our components breaks each when run alone on it
    without the screen and the prune (AutoAttack's way), over three seeds."""
    found: dict[str, Any] = {}
    for spec in ("apgd-t:screen=none", "fab-t:screen=none", "square:screen=none,prune=none", "square"):
        hits = [robust.create_attack(spec, norm=args.norm)(model, x, y, eps=args.eps, seed=seed).success.cpu()
                for seed in range(3)]
        found[spec] = {str(i): int(sum(int(h[k]) for h in hits)) for k, i in enumerate(index)}
    return {"seeds": 3, "broken_in_how_many_seeds": found}


def table(entries: list[dict[str, Any]]) -> str:
    rows = []
    for e in entries:
        s, a = e["standard"], e["apgd_ce"]
        rows.append([e["model"], e["n"], f"{s['theirs']:.1%}", f"{s['ours']:.1%}", f"{s['seconds_theirs']:.0f} s",
                     f"{s['seconds_ours']:.0f} s", f"{s['time_ratio']:.2f}x / {s['cpu_time_ratio']:.2f}x", len(s["broken_by_theirs_only"]),
                     len(s["broken_by_ours_only"]), f"{a['theirs']:.1%} / {a['ours']:.1%}", f"{a['time_ratio']:.2f}x"])
    return markdown_table(["model", "n", "AutoAttack", "ours", "AutoAttack time", "our time", "ratio (wall / CPU)",
                           "only AutoAttack broke", "only ours broke", "APGD-CE theirs / ours", "APGD-CE ratio"],
                          rows, "llrrrrrrrrr")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="cnn-at,resnet-at", help="zoo models, comma-separated")
    p.add_argument("--n", type=int, default=500, help="MNIST test images")
    p.add_argument("--eps", type=float, default=0.3)
    p.add_argument("--norm", default="linf", choices=["linf", "l2"])
    p.add_argument("--seed", type=int, default=0)
    add_run_args(p, "autoattack")
    args = p.parse_args()
    device = setup_device(args.device, args.threads)
    info = device_info(device)
    log.info("%s", describe(info))
    entries = [compare_model(name, args, device) for name in args.models.split(",")]
    print(table(entries))
    print(f"target: time ratio at most {TARGET}; every point AutoAttack breaks, ours breaks too (at most 1 in 500)")
    save_results(args, "autoattack", {"models": entries, "target_time_ratio": TARGET}, info)


if __name__ == "__main__":
    main()
