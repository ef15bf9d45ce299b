"""DeepFool, Carlini-Wagner L2 and the Boundary attack three ways on one model and one batch, in one process.

The three ways, with the same settings wherever the libraries allow:

* ``ours``: ``robust.create_attack("deepfool" | "cw" | "boundary", ...)`` called as
  ``attack(model, x, y)`` (no eps: minimization attacks).
* ``foolbox``: ``L2DeepFoolAttack``, ``L2CarliniWagnerAttack`` and ``BoundaryAttack``
  through ``foolbox.PyTorchModel(model.module.eval(), bounds=(0, 1))``, ``epsilons=None``.
* ``art``: ``DeepFool``, ``CarliniL2Method`` and ``BoundaryAttack`` on a
  ``PyTorchClassifier``, numpy in and out (conversions inside the timing).

Settings: DeepFool L2, 50 steps, 10 candidate classes, overshoot 0.02. CW L2, 100 steps,
one constant (``binary_search_steps=1``), step size 0.01, initial constant 10 (``--cw-const``),
confidence 0, early abort on. Boundary: 1000 model queries per sample (``--queries``):
ours by ``max_queries``; Foolbox by the most steps whose forward calls (its blended-noise
start, measured on the same batch and seed, then 1.1 calls a step and two checks) fit the
budget, as in ``tests/test_boundary.py``; ART by ``max_iter`` (its queries per iteration
vary, so the count is matched approximately). Queries are counted the same way for all
three: images through the network, divided by the batch.

ART's CW and Boundary cost about a second per image on a CPU, so by default they run on
the first 16 images of the batch (``--art-n``) and their times are scaled to the full batch
(x batch / 16); the table says so in the batch column. ART's Boundary is a per-sample
Python loop (time is linear in the batch); its CW is batched but nearly linear too.

Every output is re-checked by the same code (``common.verify_minimization``): the model is
re-run on it, and a sample counts as a success only if the output is finite, inside [0, 1]
and misclassified. Median L2 is over verified successes only. Foolbox's CW returns an
all-zero image where it found nothing; when the model misclassifies that blank image it is
a verified success (with a large L2), so the table also gives the figures without blanks.
``L2 / ours`` is the median, over samples that both methods fool (blanks excluded), of the
method's L2 over ours: above 1 means ours found smaller perturbations.

Run ``python benchmarks/bench_minimization.py --help`` for the flags.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

import robust
from common import (
    add_run_args,
    save_results,
    script_logger,
    setup_device,
    describe, device_info, fmt_seconds, markdown_table, median, paired_ratios, time_interleaved,
    verify_minimization,
)

log = script_logger("bench_minimization")
ATTACKS = ("deepfool", "cw", "boundary")
METHODS = ("ours", "foolbox", "art")
ROUNDS = {"deepfool": 3, "cw": 3, "boundary": 2}  # timed rounds; a boundary round is ~45 s on the 2-core CPU
DEEPFOOL = {"steps": 50, "candidates": 10, "overshoot": 0.02}
CW_STEPS, CW_LR = 100, 0.01
ART_QUERIES_PER_ITER, ART_QUERIES_FIXED = 29, 110  # ART Boundary on the zoo cnn: queries ~ 110 + 29 * max_iter
SEED = 0
Runner = Callable[[], tuple[torch.Tensor, float | None]]  # -> (x_adv, mean queries per sample or None)


@dataclass(frozen=True)
class Config:
    """What the command line sets for every case."""

    cw_const: float
    queries: int
    art_n: int
    art_boundary_iters: int


class Counting(nn.Module):
    """Counts the images the wrapped network sees (queries) and feeds it float32.

    The cast is a no-op for torch callers; ART's Boundary builds float64 arrays under numpy 2
    and would fail on a float32 network without it.
    """

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.images = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.images += len(x)
        return self.inner(x.float())


def cw_params(cfg: Config, steps: int = CW_STEPS) -> dict[str, Any]:
    return {"steps": steps, "binary_search_steps": 1, "lr": CW_LR, "initial_const": cfg.cw_const,
            "confidence": 0.0, "abort_early": True}


# --------------------------------------------------------------------------- ours

def ours_runner(model: robust.Classifier, x: torch.Tensor, y: torch.Tensor, attack: str, cfg: Config,
                stand_in: bool) -> Runner:
    if attack == "boundary":
        counted = Counting(model.module)
        target = robust.Classifier(counted, bounds=model.bounds, device=model.device)
        ours = robust.create_attack("boundary", max_queries=40 if stand_in else cfg.queries)
    else:
        counted, target = None, model
        params = {"norm": "l2", **DEEPFOOL} if attack == "deepfool" else cw_params(cfg)
        ours = robust.create_attack(attack, **{**params, **({"steps": 1} if stand_in else {})})

    def run() -> tuple[torch.Tensor, float | None]:
        if counted is not None:
            counted.images = 0
        result = ours(target, x, y, seed=SEED)
        return result.x_adv, None if counted is None else counted.images / len(x)
    return run


# --------------------------------------------------------------------------- foolbox

def foolbox_boundary_steps(module: nn.Module, x: torch.Tensor, y: torch.Tensor, budget: int) -> tuple[int, int]:
    """The most Foolbox Boundary steps that fit ``budget`` forward calls, and its start's calls.

    Foolbox queries the whole batch at every call, so calls = queries per sample: the
    blended-noise start (measured here, same batch and seed), one check of it, then per step
    one call plus one every 10 steps (statistics), and a final check in ``__call__``.
    """
    import foolbox as fb

    counted = Counting(module.eval()).eval()
    torch.manual_seed(SEED)
    fb.attacks.LinearSearchBlendedUniformNoiseAttack(steps=50).run(
        fb.PyTorchModel(counted, bounds=(0.0, 1.0), device=x.device), x, y)
    init, steps = counted.images // len(x), 0
    while init + 1 + (steps + 1) + (steps + 1) // 10 + 1 <= budget:
        steps += 1
    return steps, init


def foolbox_attack(attack: str, cfg: Config, fb_steps: int, stand_in: bool) -> Any:
    import foolbox as fb

    if attack == "deepfool":
        return fb.attacks.L2DeepFoolAttack(steps=1 if stand_in else int(DEEPFOOL["steps"]),
                                           candidates=int(DEEPFOOL["candidates"]), overshoot=DEEPFOOL["overshoot"])
    if attack == "cw":
        return fb.attacks.L2CarliniWagnerAttack(
            binary_search_steps=1, steps=1 if stand_in else CW_STEPS, stepsize=CW_LR, confidence=0.0,
            initial_const=cfg.cw_const, abort_early=True)
    return fb.attacks.BoundaryAttack(steps=1 if stand_in else fb_steps)


def foolbox_runner(model: robust.Classifier, x: torch.Tensor, y: torch.Tensor, attack: str, cfg: Config,
                   stand_in: bool, fb_steps: int = 0) -> Runner:
    import foolbox as fb

    counted = Counting(model.module.eval()).eval() if attack == "boundary" else None
    fmodel = fb.PyTorchModel(counted or model.module.eval(), bounds=(0.0, 1.0), device=x.device)
    fb_attack = foolbox_attack(attack, cfg, fb_steps, stand_in)

    def run() -> tuple[torch.Tensor, float | None]:
        if counted is not None:
            counted.images = 0
        torch.manual_seed(SEED)  # Foolbox's Boundary draws from torch's global generator
        adv, _, _ = fb_attack(fmodel, x, y, epsilons=None)
        return adv, None if counted is None else counted.images / len(x)
    return run


# --------------------------------------------------------------------------- ART

def art_attack(attack: str, classifier: Any, n: int, cfg: Config, stand_in: bool) -> Any:
    from art.attacks.evasion import BoundaryAttack, CarliniL2Method, DeepFool

    if attack == "deepfool":
        return DeepFool(classifier, max_iter=1 if stand_in else DEEPFOOL["steps"], epsilon=DEEPFOOL["overshoot"],
                        nb_grads=DEEPFOOL["candidates"], batch_size=n, verbose=False)
    if attack == "cw":
        return CarliniL2Method(classifier, confidence=0.0, learning_rate=CW_LR, binary_search_steps=1,
                               max_iter=1 if stand_in else CW_STEPS, initial_const=cfg.cw_const, batch_size=n,
                               verbose=False)
    return BoundaryAttack(classifier, targeted=False, max_iter=1 if stand_in else cfg.art_boundary_iters,
                          batch_size=n, verbose=False)


def art_runner(model: robust.Classifier, x: torch.Tensor, y: torch.Tensor, attack: str, cfg: Config,
               stand_in: bool) -> Runner:
    from art.estimators.classification import PyTorchClassifier

    counted = Counting(model.module) if attack == "boundary" else None
    classifier = PyTorchClassifier(
        model=counted or model.module, loss=nn.CrossEntropyLoss(), input_shape=tuple(x.shape[1:]),
        nb_classes=int(model.num_classes or 10), clip_values=(0.0, 1.0),
        device_type="gpu" if x.device.type == "cuda" else "cpu")
    art = art_attack(attack, classifier, len(x), cfg, stand_in)

    def run() -> tuple[torch.Tensor, float | None]:
        if counted is not None:
            counted.images = 0
        np.random.seed(SEED)  # ART's Boundary steps draw from numpy's global generator (its start does not)
        adv = art.generate(x.cpu().numpy(), y.cpu().numpy())
        return torch.from_numpy(adv).to(x.device, torch.float32), None if counted is None else counted.images / len(x)
    return run


# --------------------------------------------------------------------------- one case

def method_batch(method: str, attack: str, n: int, cfg: Config) -> int:
    """ART's CW and Boundary run on the first ``art_n`` images (their time is scaled); all else on ``n``."""
    return min(n, cfg.art_n) if method == "art" and attack != "deepfool" and cfg.art_n > 0 else n


def build(model: robust.Classifier, x: torch.Tensor, y: torch.Tensor, attack: str, cfg: Config,
          methods: tuple[str, ...], stand_in: bool, fb_steps: int) -> dict[str, Runner]:
    cases: dict[str, Runner] = {}
    for m in methods:
        k = method_batch(m, attack, len(x), cfg)
        if m == "ours":
            cases[m] = ours_runner(model, x[:k], y[:k], attack, cfg, stand_in)
        elif m == "foolbox":
            cases[m] = foolbox_runner(model, x[:k], y[:k], attack, cfg, stand_in, fb_steps)
        else:
            cases[m] = art_runner(model, x[:k], y[:k], attack, cfg, stand_in)
    return cases


def bench_case(model: robust.Classifier, x: torch.Tensor, y: torch.Tensor, attack: str, cfg: Config,
               repeats: int, methods: tuple[str, ...], device: torch.device) -> list[dict[str, Any]]:
    """Time the methods interleaved on one (model, attack) after stand-in warm-ups; verify each output."""
    fb_steps, fb_init = (foolbox_boundary_steps(model.module, x, y, cfg.queries)
                         if attack == "boundary" and "foolbox" in methods else (0, 0))
    cases = build(model, x, y, attack, cfg, methods, False, fb_steps)
    stand_ins = build(model, x, y, attack, cfg, methods, True, fb_steps)
    times, outputs = time_interleaved(cases, device, repeats=repeats, warmup=1, warmup_cases=stand_ins)
    scale = {m: len(x) / method_batch(m, attack, len(x), cfg) for m in methods}
    scaled = {m: [t * scale[m] for t in ts] for m, ts in times.items()}
    ratios = paired_ratios(scaled, "ours")
    ours = verify_minimization(model.module, x, y, outputs["ours"][0])
    rows = []
    for m in methods:
        k = method_batch(m, attack, len(x), cfg)
        verdict = verify_minimization(model.module, x[:k], y[:k], outputs[m][0])
        rows.append({
            "model": model.name, "attack": attack, "method": m, "batch": len(x), "method_batch": k,
            "time_scale": scale[m], "seconds": median(scaled[m]), "seconds_all": scaled[m],
            "seconds_measured_all": times[m], "ratio_to_ours": ratios[m], "images_per_s": k / median(times[m]),
            "queries_per_sample": outputs[m][1], **quality(verdict, {n: t[:k] for n, t in ours.items()}),
            **({"foolbox_steps": fb_steps, "foolbox_start_calls": fb_init} if m == "foolbox" and fb_steps else {}),
        })
    return rows


def quality(v: dict[str, torch.Tensor], ours: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Success rates and median L2 over verified successes, with and without blank outputs."""
    real = v["success"] & ~v["blank"]
    common = real & ours["success"] & ~ours["blank"]
    ratio = v["l2"][common] / ours["l2"][common].clamp_min(1e-12)
    return {
        "success_rate": float(v["success"].float().mean()), "successes": int(v["success"].sum()),
        "blank": int(v["blank"].sum()), "blank_successes": int((v["success"] & v["blank"]).sum()),
        "invalid": int(v["invalid"].sum()), "success_rate_without_blank": float(real.float().mean()),
        "median_l2": median_or_none(v["l2"][v["success"]]), "median_l2_without_blank": median_or_none(v["l2"][real]),
        "common_successes": int(common.sum()), "l2_ratio_to_ours_common": median_or_none(ratio),
    }


def median_or_none(values: torch.Tensor) -> float | None:
    """The median (mean of the two middle values for an even count), or None when empty."""
    return float(values.double().quantile(0.5)) if values.numel() else None


# --------------------------------------------------------------------------- output

def attack_label(attack: str, cfg: Config) -> str:
    return {"deepfool": f"DeepFool L2-{DEEPFOOL['steps']}", "cw": f"CW L2-{CW_STEPS} (c={cfg.cw_const:g})",
            "boundary": f"Boundary ({cfg.queries} q)"}[attack]


def success_cell(r: dict[str, Any]) -> str:
    cell = f"{r['success_rate']:.1%}"
    if r["blank_successes"]:
        cell += f" ({r['blank_successes']} of them blank; {r['success_rate_without_blank']:.1%} without)"
    return cell + (f" ({r['invalid']} invalid)" if r["invalid"] else "")


def l2_cell(r: dict[str, Any]) -> str:
    if r["median_l2"] is None:
        return "-"
    cell = f"{r['median_l2']:.3f}"
    if r["blank_successes"] and r["median_l2_without_blank"] is not None:
        cell += f" ({r['median_l2_without_blank']:.3f} without blank)"
    return cell


def table(rows: list[dict[str, Any]], cfg: Config, label: str) -> str:
    headers = ["model", "attack", "method", "batch", "seconds", "x ours", "images/s", "success", "median L2",
               "L2 / ours", "queries/sample"]
    body = [[r["model"], attack_label(r["attack"], cfg), r["method"],
             str(r["batch"]) if r["time_scale"] == 1 else f"{r['method_batch']} (time x{r['time_scale']:g})",
             fmt_seconds(r["seconds"]), f"{r['ratio_to_ours']:.2f}x", f"{r['images_per_s']:,.1f}", success_cell(r),
             l2_cell(r), "-" if r["method"] == "ours" or r["l2_ratio_to_ours_common"] is None
             else f"{r['l2_ratio_to_ours_common']:.3f} (n={r['common_successes']})",
             "-" if r["queries_per_sample"] is None else f"{r['queries_per_sample']:.0f}"] for r in rows]
    return f"Device: {label}\n\n" + markdown_table(headers, body, "lllrrrrrrrr")


def targets(rows: list[dict[str, Any]]) -> list[str]:
    """The stated targets, checked per (model, attack): vs Foolbox (speed, L2) and vs ART (10x, DeepFool and CW)."""
    lines = []
    for r in rows:
        where = f"{r['model']} {r['attack']}"
        if r["method"] == "foolbox":
            ok_t, ratio = r["ratio_to_ours"] >= 1.0, r["l2_ratio_to_ours_common"]
            ok_l2 = ratio is not None and ratio >= 0.995
            lines.append(f"- {where}: no slower than Foolbox ({r['ratio_to_ours']:.2f}x of ours: "
                         f"{'met' if ok_t else 'NOT met'}) at equal or better median L2 (Foolbox / ours on "
                         f"{r['common_successes']} common successes {ratio if ratio is None else f'{ratio:.3f}'}: "
                         f"{'met' if ok_l2 else 'NOT met'})")
        elif r["method"] == "art" and r["attack"] in ("deepfool", "cw"):
            lines.append(f"- {where}: at least 10x faster than ART ({r['ratio_to_ours']:.1f}x: "
                         f"{'met' if r['ratio_to_ours'] >= 10 else 'NOT met'})")
    return lines


# --------------------------------------------------------------------------- main

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=None,
                   help="timed rounds for every attack (default: deepfool 3, cw 3, boundary 2; 1 with --quick)")
    p.add_argument("--quick", action="store_true", help="one timed round per attack, results to 'minimization-quick'")
    p.add_argument("--models", default="cnn", help="zoo models, comma-separated (default cnn; resnet also works)")
    p.add_argument("--attacks", default=",".join(ATTACKS), help="deepfool, cw, boundary (default all three)")
    p.add_argument("--methods", default=",".join(METHODS), help="ours, foolbox, art (ours is always included)")
    p.add_argument("--n", type=int, default=64, help="batch: the first n correctly classified MNIST test images")
    p.add_argument("--art-n", type=int, default=16,
                   help="images for ART's CW and Boundary, time scaled to --n (default 16; 0 = the whole batch)")
    p.add_argument("--cw-const", type=float, default=10.0, help="CW's one constant c (default 10)")
    p.add_argument("--queries", type=int, default=1000, help="Boundary query budget per sample (default 1000)")
    p.add_argument("--art-boundary-iters", type=int, default=None,
                   help=f"ART Boundary max_iter (default (queries - {ART_QUERIES_FIXED}) // {ART_QUERIES_PER_ITER}, "
                        "about the budget on the zoo cnn; the measured queries are reported)")
    add_run_args(p, "minimization")
    return p.parse_args(argv)


def make_config(args: argparse.Namespace) -> Config:
    iters = args.art_boundary_iters
    if iters is None:
        iters = max(1, (args.queries - ART_QUERIES_FIXED) // ART_QUERIES_PER_ITER)
    return Config(cw_const=args.cw_const, queries=args.queries, art_n=args.art_n, art_boundary_iters=iters)


def correct_batch(model: robust.Classifier, data: Any, n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` test images the model classifies correctly."""
    x, y = data.x.to(device), data.y.to(device)
    keep = model.predict(x) == y
    if int(keep.sum()) < n:
        raise RuntimeError(f"only {int(keep.sum())} of {len(x)} images are classified correctly; need {n}")
    return x[keep][:n], y[keep][:n]


def run_all(args: argparse.Namespace, cfg: Config, device: torch.device, label: str) -> list[dict[str, Any]]:
    methods = tuple(m for m in METHODS if m == "ours" or m in args.methods.split(","))
    data = robust.load_dataset("mnist", n=max(512, 2 * args.n))
    rows: list[dict[str, Any]] = []
    for model_name in args.models.split(","):
        model = robust.load_model(model_name, device=device)
        x, y = correct_batch(model, data, args.n, device)
        for attack in args.attacks.split(","):
            repeats = args.repeats or (1 if args.quick else ROUNDS[attack])
            log.info("%s %s, batch %d, %d timed rounds on %s", model_name, attack, len(x), repeats, label)
            rows += bench_case(model, x, y, attack, cfg, repeats, methods, device)
    return rows




def payload(args: argparse.Namespace, cfg: Config, rows: list[dict[str, Any]], elapsed: float) -> dict[str, Any]:
    import art
    import foolbox

    return {
        "config": {
            "batch": args.n, "art_batch_cw_boundary": cfg.art_n, "deepfool": {"norm": "l2", **DEEPFOOL},
            "cw": cw_params(cfg), "boundary": {"queries": cfg.queries, "art_max_iter": cfg.art_boundary_iters},
            "seed": SEED, "timed_rounds": {a: args.repeats or (1 if args.quick else ROUNDS[a]) for a in ATTACKS},
            "warmup": "one untimed run per method with 1 step (Boundary: ours 40 queries, Foolbox 1 step, ART 1 iter)",
            "torch_threads": torch.get_num_threads(),
            "versions": {"foolbox": foolbox.__version__, "art": art.__version__, "numpy": np.__version__},
        },
        "total_seconds": elapsed,
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = setup_device(args.device, args.threads)
    cfg, info = make_config(args), device_info(device)
    start = time.perf_counter()
    rows = run_all(args, cfg, device, describe(info))
    elapsed = time.perf_counter() - start
    print(f"\n{table(rows, cfg, describe(info))}\n\nx ours: median over rounds of (method / ours) in the same round, "
          f"times scaled to the batch of {args.n}. Total {elapsed:.0f} s.\n\nTargets ({describe(info)}):\n"
          + "\n".join(targets(rows)))
    save_results(args, "minimization", payload(args, cfg, rows, elapsed), info)


if __name__ == "__main__":
    main()
