"""PGD-10 and FGSM (Linf) four ways on one model and one batch, in one process.

The four ways:

* ``raw``: a hand-written torch loop, the floor to match: sign-gradient steps, projection
  onto the eps ball, clipping to [0, 1]; it keeps each sample's first misclassified iterate
  (as ``ours`` does, from the logits the step computes anyway) and ends with one forward
  pass on the last iterate, so it computes the same robust accuracy as ``ours``.
* ``ours``: ``robust.create_attack("pgd", steps=10, random_start=False)`` (or ``"fgsm"``)
  called as ``attack(model, x, y, eps=eps)``; the harness validates, projects, clips and
  judges success by re-running the model. Samples leave the batch once misclassified.
* ``foolbox``: ``LinfPGD(steps=10, abs_stepsize=2.5 * eps / 10, random_start=False)``
  (``FGSM()``) through ``foolbox.PyTorchModel``; it returns success per sample.
* ``art``: ``ProjectedGradientDescentPyTorch`` (``FastGradientMethod``) on a
  ``PyTorchClassifier``, numpy in and out, then ``classifier.predict`` on the output to get
  robust accuracy.

Settings: ``eps=0.3`` on the first 256 MNIST test images (standard models fall fast, so
early exit helps ``ours``), and ``eps=0.05`` on 256 "survivors": test images that the raw
PGD-10 loop does not fool at eps 0.05. On the survivors no sample ever leaves the batch,
so early exit cannot help and the ratio to ``raw`` is pure overhead.

Every output is re-checked by the same code (``common.verify``): bounds, the eps ball, and
a forward pass of the model. Run ``python benchmarks/bench_pgd.py --help`` for the flags.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import robust
from common import (
    add_run_args,
    save_results,
    script_logger,
    setup_device,
    describe, device_info, fmt_bytes, fmt_seconds, markdown_table, median, memory_method, paired_ratios, peak_memory,
    prepare_cpu_memory, time_interleaved, verify,
)

log = script_logger("bench_pgd")
METHODS = ("raw", "ours", "foolbox", "art")
STEPS = 10
FGSM_FACTOR = 2  # FGSM is a tenth of PGD-10's cost, so it gets more timed rounds
Runner = Callable[[], tuple[torch.Tensor, float]]


@dataclass(frozen=True)
class Setting:
    """One eps and one batch: the first ``n`` test images, or ``n`` survivors of raw PGD-10 at ``eps``."""

    name: str
    eps: float
    survivors: bool


# --------------------------------------------------------------------------- the floor

def raw_attack(net: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int,
               step_size: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Hand-written Linf PGD without random start (FGSM when ``steps=1, step_size=eps``).

    Returns the adversarial batch and a per-sample bool: still classified correctly at
    every iterate, the last included.
    """
    lo, hi = (x - eps).clamp_min(0.0), (x + eps).clamp_max(1.0)
    xa, best = x.clone(), x.clone()
    fooled = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    for _ in range(steps):
        xa.requires_grad_(True)
        logits = net(xa)
        grad, = torch.autograd.grad(F.cross_entropy(logits, y, reduction="sum"), xa)
        with torch.no_grad():
            xa = xa.detach()
            new = (logits.argmax(1) != y) & ~fooled
            best = torch.where(new.view(-1, 1, 1, 1), xa, best)
            fooled |= new
            xa = torch.clamp(xa + step_size * grad.sign(), min=lo, max=hi)
    with torch.no_grad():
        fooled_last = net(xa).argmax(1) != y
    return torch.where(fooled.view(-1, 1, 1, 1), best, xa), ~(fooled | fooled_last)


# --------------------------------------------------------------------------- the four ways

def attack_params(attack: str, eps: float, steps: int = STEPS) -> tuple[int, float]:
    """Steps and absolute step size: PGD with 2.5 * eps / 10 (PGD-10's), or FGSM's one step of eps."""
    return (steps, 2.5 * eps / STEPS) if attack == "pgd" else (1, eps)


def runners(model: robust.Classifier, x: torch.Tensor, y: torch.Tensor, attack: str, eps: float,
            steps: int = STEPS, methods: tuple[str, ...] = METHODS) -> dict[str, Runner]:
    """One callable per method; each returns (x_adv on the device, its own robust accuracy).

    ``steps`` below 10 gives cheap stand-ins with the same code paths, for warming up.
    """
    factories = {"raw": raw_runner, "ours": ours_runner, "foolbox": foolbox_runner, "art": art_runner}
    return {m: factories[m](model, x, y, attack, eps, steps) for m in methods}


def raw_runner(model: robust.Classifier, x: torch.Tensor, y: torch.Tensor, attack: str, eps: float,
               steps: int) -> Runner:
    steps, step_size = attack_params(attack, eps, steps)

    def run() -> tuple[torch.Tensor, float]:
        x_adv, robust_mask = raw_attack(model.module, x, y, eps, steps, step_size)
        return x_adv, float(robust_mask.float().mean())
    return run


def ours_runner(model: robust.Classifier, x: torch.Tensor, y: torch.Tensor, attack: str, eps: float,
                steps: int) -> Runner:
    if attack == "fgsm":
        ours = robust.create_attack("fgsm")
    elif steps == STEPS:  # exactly the call under test
        ours = robust.create_attack("pgd", steps=STEPS, random_start=False)
    else:
        ours = robust.create_attack("pgd", steps=steps, random_start=False, step_size=attack_params(attack, eps)[1])

    def run() -> tuple[torch.Tensor, float]:
        result = ours(model, x, y, eps=eps)
        return result.x_adv, 1.0 - float(result.success.float().mean())
    return run


def foolbox_runner(model: robust.Classifier, x: torch.Tensor, y: torch.Tensor, attack: str, eps: float,
                   steps: int) -> Runner:
    import foolbox as fb

    fmodel = fb.PyTorchModel(model.module, bounds=(0.0, 1.0), device=x.device)
    steps, step_size = attack_params(attack, eps, steps)
    fb_attack = (fb.attacks.LinfPGD(steps=steps, abs_stepsize=step_size, random_start=False) if attack == "pgd"
                 else fb.attacks.FGSM())

    def run() -> tuple[torch.Tensor, float]:
        _, clipped, success = fb_attack(fmodel, x, y, epsilons=eps)
        return clipped, 1.0 - float(success.float().mean())
    return run


def art_runner(model: robust.Classifier, x: torch.Tensor, y: torch.Tensor, attack: str, eps: float,
               steps: int) -> Runner:
    from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescentPyTorch
    from art.estimators.classification import PyTorchClassifier

    classifier = PyTorchClassifier(
        model=model.module, loss=nn.CrossEntropyLoss(), input_shape=tuple(x.shape[1:]), nb_classes=10,
        clip_values=(0.0, 1.0), device_type="gpu" if x.device.type == "cuda" else "cpu",
    )
    steps, step_size = attack_params(attack, eps, steps)
    n = len(x)
    art_attack = (
        ProjectedGradientDescentPyTorch(estimator=classifier, norm=np.inf, eps=eps, eps_step=step_size,
                                        max_iter=steps, num_random_init=0, batch_size=n, verbose=False)
        if attack == "pgd" else FastGradientMethod(estimator=classifier, norm=np.inf, eps=eps, batch_size=n)
    )

    def run() -> tuple[torch.Tensor, float]:
        x_np, y_np = x.cpu().numpy(), y.cpu().numpy()
        adv = art_attack.generate(x_np, y_np)
        pred = classifier.predict(adv, batch_size=n).argmax(1)
        return torch.from_numpy(adv).to(x.device), float((pred == y_np).mean())
    return run


# --------------------------------------------------------------------------- data

def survivors(net: nn.Module, data: Any, eps: float, n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` test images that raw PGD-10 at ``eps`` does not fool (clean errors excluded)."""
    xs, ys = [], []
    for i in range(0, len(data.x), n):
        x, y = data.x[i:i + n].to(device), data.y[i:i + n].to(device)
        _, keep = raw_attack(net, x, y, eps, STEPS, 2.5 * eps / STEPS)
        xs.append(x[keep])
        ys.append(y[keep])
        if sum(len(t) for t in ys) >= n:
            return torch.cat(xs)[:n], torch.cat(ys)[:n]
    raise RuntimeError(f"only {sum(len(t) for t in ys)} of {len(data.x)} images survive eps={eps}; need {n}")


def batch_for(setting: Setting, model: robust.Classifier, data: Any, n: int,
              device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    if setting.survivors:
        return survivors(model.module, data, setting.eps, n, device)
    return data.x[:n].to(device), data.y[:n].to(device)


# --------------------------------------------------------------------------- one case

def bench_case(model: robust.Classifier, x: torch.Tensor, y: torch.Tensor, attack: str, setting: Setting,
               repeats: int, methods: tuple[str, ...], device: torch.device
               ) -> tuple[list[dict[str, Any]], dict[str, Runner]]:
    """Time the methods interleaved on one (model, attack, setting); verify each output.

    PGD warms up on one-step stand-ins (same code paths and shapes, a tenth of the cost).
    """
    cases = runners(model, x, y, attack, setting.eps, methods=methods)
    stand_ins = runners(model, x, y, attack, setting.eps, steps=1, methods=methods) if attack == "pgd" else None
    times, outputs = time_interleaved(cases, device, repeats=repeats, warmup=1, warmup_cases=stand_ins)
    ratios = paired_ratios(times, "raw")
    raw_median = median(times["raw"])
    rows = []
    for method in methods:
        x_adv, own = outputs[method]
        seconds = median(times[method])
        rows.append({
            "model": model.name, "attack": attack, "setting": setting.name, "eps": setting.eps,
            "batch": len(x), "method": method, "seconds": seconds, "seconds_all": times[method],
            "ratio_to_raw": ratios[method], "ratio_of_medians": seconds / raw_median,
            "images_per_s": len(x) / seconds, "reported_robust_accuracy": own,
            **verify(model.module, x, y, x_adv, setting.eps),
        })
    return rows, cases


# --------------------------------------------------------------------------- main

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=None,
                   help="timed rounds for PGD (FGSM gets twice as many); default 3, or 1 with --quick")
    p.add_argument("--quick", action="store_true", help="one timed round, no memory pass, results to section 'pgd-quick'")
    p.add_argument("--models", default="resnet,cnn", help="zoo models, comma-separated (default resnet,cnn)")
    p.add_argument("--attacks", default="pgd,fgsm", help="pgd, fgsm or both (default)")
    p.add_argument("--methods", default=",".join(METHODS),
                   help="methods to time, comma-separated (default all four; raw is always included)")
    p.add_argument("--settings", default="first,survivors", choices=("first,survivors", "first", "survivors"),
                   help="first: eps on the first n test images; survivors: robust eps on images raw PGD-10 "
                        "does not fool (default both)")
    p.add_argument("--eps", type=float, default=0.3, help="eps of the standard setting (default 0.3)")
    p.add_argument("--robust-eps", type=float, default=0.05, help="eps of the survivors setting (default 0.05)")
    p.add_argument("--n", type=int, default=256, help="batch size (default 256)")
    p.add_argument("--memory", choices=("survivors", "all", "none"), default="survivors",
                   help="rows that get a peak-memory run after the timings (default: the survivors rows, "
                        "where every method runs the full batch for every step); none with --quick")
    add_run_args(p, "pgd")
    return p.parse_args(argv)


def accuracy_cell(row: dict[str, Any]) -> str:
    """Verified robust accuracy, flagged where the method's own figure or the rules disagree."""
    cell = f"{row['robust_accuracy']:.1%}"
    if abs(row["reported_robust_accuracy"] - row["robust_accuracy"]) > 0.5 / row["batch"]:
        cell += f" (reports {row['reported_robust_accuracy']:.1%})"
    if row["invalid"]:
        cell += f" ({row['invalid']} outside bounds or ball)"
    return cell


def table(rows: list[dict[str, Any]], label: str) -> str:
    headers = ["model", "attack", "eps (batch)", "method", "seconds", "x raw", "images/s", "robust acc", "peak mem"]
    body = [[r["model"], r["attack"].upper() + ("-10" if r["attack"] == "pgd" else ""),
             f"{r['eps']:g} ({r['setting']})", r["method"], fmt_seconds(r["seconds"]), f"{r['ratio_to_raw']:.2f}x",
             f"{r['images_per_s']:,.0f}", accuracy_cell(r),
             fmt_bytes(r["peak_memory_bytes"]) if "peak_memory_bytes" in r else "-"] for r in rows]
    return f"Device: {label}\n\n" + markdown_table(headers, body, "llllrrrrr")


def memory_pass(all_cases: list[tuple[int, dict[str, Runner]]], rows: list[dict[str, Any]], device: torch.device,
                which: str) -> None:
    """One untimed run per method after all timings, recording peak memory into the rows."""
    if device.type == "cpu":
        prepare_cpu_memory()
    for first_row, cases in all_cases:
        if which == "survivors" and rows[first_row]["setting"] != "survivors":
            continue
        for k, method in enumerate(cases):
            rows[first_row + k]["peak_memory_bytes"] = peak_memory(cases[method], device)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = setup_device(args.device, args.threads)
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 3)
    memory = "none" if args.quick else args.memory
    info = device_info(device)
    start = time.perf_counter()
    rows, all_cases = run_all(args, device, repeats, describe(info))
    if memory != "none":
        log.info("peak memory pass (%s rows)", memory)
        memory_pass(all_cases, rows, device, memory)
    elapsed = time.perf_counter() - start
    print(f"\n{table(rows, describe(info))}\n\nx raw: median over rounds of (method / raw loop) in the same round. "
          f"PGD {repeats} timed rounds, FGSM {FGSM_FACTOR * repeats}; total {elapsed:.0f} s.")
    save_results(args, "pgd", payload(args, repeats, memory, rows, device, elapsed), info)


def run_all(args: argparse.Namespace, device: torch.device, repeats: int,
            label: str) -> tuple[list[dict[str, Any]], list[tuple[int, dict[str, Runner]]]]:
    """Every (model, setting, attack) case; returns the rows and each case's runners (for memory)."""
    known = {"first": Setting("first", args.eps, False), "survivors": Setting("survivors", args.robust_eps, True)}
    settings = [known[name] for name in args.settings.split(",")]
    methods = tuple(m for m in METHODS if m == "raw" or m in args.methods.split(","))
    data = robust.load_dataset("mnist", n=4096)
    rows: list[dict[str, Any]] = []
    all_cases: list[tuple[int, dict[str, Runner]]] = []
    for model_name in args.models.split(","):
        model = robust.load_model(model_name, device=device)
        for setting in settings:
            x, y = batch_for(setting, model, data, args.n, device)
            for attack in args.attacks.split(","):
                log.info("%s %s eps=%g (%s) on %s", model_name, attack, setting.eps, setting.name, label)
                reps = repeats * (FGSM_FACTOR if attack == "fgsm" else 1)
                case_rows, cases = bench_case(model, x, y, attack, setting, reps, methods, device)
                all_cases.append((len(rows), cases))
                rows += case_rows
    return rows, all_cases




def payload(args: argparse.Namespace, repeats: int, memory: str, rows: list[dict[str, Any]], device: torch.device,
            elapsed: float) -> dict[str, Any]:
    import art
    import foolbox

    return {
        "config": {
            "batch": args.n, "steps": STEPS, "step_size": "2.5 * eps / steps (PGD), eps (FGSM)", "norm": "linf",
            "random_start": False, "eps": args.eps, "robust_eps": args.robust_eps,
            "timed_rounds": {"pgd": repeats, "fgsm": FGSM_FACTOR * repeats},
            "warmup": "one untimed run per method (PGD: one-step stand-ins)", "torch_threads": torch.get_num_threads(),
            "versions": {"foolbox": foolbox.__version__, "art": art.__version__, "numpy": np.__version__},
        },
        "memory_rows": memory,
        "memory_method": None if memory == "none" else memory_method(device),
        "total_seconds": elapsed,
        "rows": rows,
    }


if __name__ == "__main__":
    main()
