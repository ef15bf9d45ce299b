"""PGD throughput in fp32, bf16, bf16 + channels-last and compiled, and bf16's agreement with fp32.

Throughput: a CIFAR-shaped torchvision ResNet-18 (``resnet18(num_classes=10)``, random
weights, seed 0) wrapped in ``robust.Classifier`` and set up with
``model.accelerate(precision, compile)``; the attack is ``create_attack("pgd", steps=S,
random_start=False)`` on one batch of seeded uniform 3x32x32 images. Cases:

* ``fp32``; ``bf16``: bf16 autocast for the gradient passes, NCHW layout;
  ``bf16+cl``: the same with the module and its input in channels-last layout (what
  ``accelerate("bf16")`` does on CUDA; on the CPU it is set here).
* with ``--compile`` (default on CUDA, off on the CPU, where a cold compile takes about a
  minute per case): ``fp32 compiled`` and ``bf16+cl compiled``. The first use (compilation
  included) is timed apart from the timed rounds, with a fresh compiler cache directory
  unless ``--warm-cache``.

The layout is pinned by a thin wrapper that calls ``x.contiguous(memory_format=...)`` before
the network. To keep every sample in the batch for every step, eps is 0 and each case's
labels are its own predictions on the gradient path (bf16 for the bf16 cases): no sample can
be misclassified, so none leaves the batch. The wrapper counts the images that go through
gradient passes; image-steps/s is that count over the call's time (the final fp32 success
check, a forward pass without gradients, is inside the time but not counted).

Agreement: PGD-40 (random start, seed 0) at Linf eps 0.1 on the zoo ``cnn``, first MNIST test
images, fp32 against ``accelerate("bf16")``: robust accuracy of each (success always judged
in fp32), the points where they differ, and how many bf16-robust points the bf16 gradient
pass itself calls misclassified (the attack stops on those at a bf16 verdict).

Run ``python benchmarks/bench_precision.py --help`` for the flags.
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

import robust
from common import (
    add_run_args,
    save_results,
    describe, device_info, fmt_seconds, markdown_table, median, paired_ratios, script_logger, setup_device, sync,
    time_interleaved,
)

log = script_logger("bench_precision")
CASES: dict[str, tuple[str, str, bool]] = {  # name: (precision, layout, compile); "fp32" is the baseline
    "fp32": ("fp32", "nchw", False), "bf16": ("bf16", "nchw", False), "bf16+cl": ("bf16", "cl", False),
    "fp32 compiled": ("fp32", "nchw", True), "bf16+cl compiled": ("bf16", "cl", True),
}
FORMATS = {"nchw": torch.contiguous_format, "cl": torch.channels_last}


class Layout(nn.Module):
    """Runs ``net`` on its input in one memory layout; counts images through gradient passes."""

    images: torch.Tensor

    def __init__(self, net: nn.Module, layout: str) -> None:
        super().__init__()
        self.net, self.fmt = net, FORMATS[layout]
        self.register_buffer("images", torch.zeros((), dtype=torch.long))  # a tensor: no recompile per call

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            self.images.add_(x.shape[0])
        return self.net(x.contiguous(memory_format=self.fmt))


def build(net: nn.Module, case: str, device: torch.device) -> tuple[robust.Classifier, Layout]:
    """A fresh copy of ``net`` set up for ``case``."""
    precision, layout, compile_ = CASES[case]
    wrapper = Layout(copy.deepcopy(net), layout)
    model = robust.Classifier(wrapper, device=device).accelerate(precision, compile=compile_)
    wrapper.to(memory_format=FORMATS[layout])  # after accelerate, which sets channels-last for bf16 on CUDA
    return model, wrapper


def own_labels(model: robust.Classifier, x: torch.Tensor) -> torch.Tensor:
    """The model's predictions on its gradient path (bf16 where accelerated), in eval mode."""
    with model.evaluating(), torch.enable_grad():
        return model(x.clone().requires_grad_(True)).argmax(1).detach()


def throughput(args: argparse.Namespace, device: torch.device) -> list[dict[str, Any]]:
    """Time PGD on every case in interleaved rounds, after a first use timed apart."""
    torch.manual_seed(0)
    import torchvision

    net = torchvision.models.resnet18(num_classes=10)
    x = torch.rand(args.batch, 3, 32, 32, generator=torch.Generator().manual_seed(0)).to(device)
    pgd = robust.create_attack("pgd", steps=args.steps, random_start=False)
    names = [c for c in CASES if args.compile or not CASES[c][2]]
    runners: dict[str, Callable[[], int]] = {}
    first: dict[str, float] = {}
    for name in names:
        model, wrapper = build(net, name, device)
        log.info("%s: first use (labels and one PGD-%d call)%s", name, args.steps, ", compiling" if CASES[name][2] else "")
        sync(device)
        start = time.perf_counter()
        y = own_labels(model, x)
        pgd(model, x, y, eps=0.0)
        sync(device)
        first[name] = time.perf_counter() - start

        def run(model: robust.Classifier = model, wrapper: Layout = wrapper, y: torch.Tensor = y) -> int:
            before = int(wrapper.images)
            pgd(model, x, y, eps=0.0)
            return int(wrapper.images) - before
        runners[name] = run
    log.info("%d timed rounds of PGD-%d on %d images, cases %s", args.repeats, args.steps, args.batch, ", ".join(names))
    times, outputs = time_interleaved(runners, device, repeats=args.repeats, warmup=0)
    ratios = paired_ratios({n: [1 / t for t in ts] for n, ts in times.items()}, "fp32")
    rows = []
    for name in names:
        seconds = median(times[name])
        precision, layout, compile_ = CASES[name]
        rows.append({"case": name, "precision": precision, "layout": layout, "compile": compile_, "batch": args.batch,
                     "steps": args.steps, "image_steps": outputs[name], "seconds": seconds, "seconds_all": times[name],
                     "image_steps_per_s": outputs[name] / seconds, "speedup_vs_fp32": ratios[name],
                     "first_use_seconds": first[name],
                     "compile_seconds": first[name] - seconds if compile_ else None})
    return rows


def agreement(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """PGD-40 on the zoo cnn in fp32 and in bf16: robust accuracy, differing points and bf16 verdicts."""
    data = robust.load_dataset("mnist", n=args.agree_n)
    x, y = data.x[:args.agree_n].to(device), data.y[:args.agree_n].to(device)
    pgd = robust.create_attack("pgd", steps=40)
    out: dict[str, Any] = {"n": len(x), "eps": args.agree_eps, "attack": "pgd steps=40 (random start, seed 0)"}
    masks = {}
    for precision in ("fp32", "bf16"):
        model = robust.load_model("cnn", device=device).accelerate(precision)
        correct = model.predict(x) == y
        sync(device)
        start = time.perf_counter()
        result = pgd(model, x, y, eps=args.agree_eps, seed=0)
        sync(device)
        masks[precision] = correct & ~result.success
        out[precision] = {"robust_accuracy": float(masks[precision].float().mean()), "seconds": time.perf_counter() - start,
                          "clean_accuracy": float(correct.float().mean())}
        if precision == "bf16":  # points the attack stopped on at a bf16 verdict that fp32 then rejected
            stopped = torch.zeros_like(correct)
            stopped[masks[precision]] = own_labels(model, result.x_adv[masks[precision]]) != y[masks[precision]]
            out["bf16_robust_but_bf16_pass_says_fooled"] = int(stopped.sum())
            out["of_those_broken_in_fp32"] = int((stopped & ~masks["fp32"]).sum())
    out["points_differing"] = int((masks["fp32"] != masks["bf16"]).sum())
    out["robust_only_in_bf16"] = int((masks["bf16"] & ~masks["fp32"]).sum())
    out["robust_only_in_fp32"] = int((masks["fp32"] & ~masks["bf16"]).sum())
    return out


def report(rows: list[dict[str, Any]], agree: dict[str, Any], label: str) -> str:
    """The throughput table and the agreement table, each headed by the device."""
    head = ["case", "image-steps/s", "x fp32", "seconds / call", "first use", "compile time"]
    body = [[r["case"], f"{r['image_steps_per_s']:,.0f}", f"{r['speedup_vs_fp32']:.2f}x", fmt_seconds(r["seconds"]),
             fmt_seconds(r["first_use_seconds"]), fmt_seconds(r["compile_seconds"]) if r["compile"] else "-"]
            for r in rows]
    steps = rows[0]
    fp32, bf16 = agree["fp32"], agree["bf16"]
    agree_body = [["fp32", f"{fp32['robust_accuracy']:.1%}", fmt_seconds(fp32["seconds"]), "-", "-"],
                  ["bf16", f"{bf16['robust_accuracy']:.1%}", fmt_seconds(bf16["seconds"]),
                   f"{agree['points_differing']} ({agree['robust_only_in_bf16']} robust only in bf16, "
                   f"{agree['robust_only_in_fp32']} only in fp32)",
                   f"{agree['bf16_robust_but_bf16_pass_says_fooled']} ({agree['of_those_broken_in_fp32']} broken in fp32)"]]
    return (f"PGD-{steps['steps']} on a CIFAR-shaped ResNet-18, batch {steps['batch']} "
            f"({steps['image_steps']} image-steps a call): {label}\n\n" + markdown_table(head, body, "lrrrrr")
            + f"\n\nPGD-40 on the zoo cnn, Linf eps {agree['eps']:g}, {agree['n']} MNIST test images "
            f"(clean {fp32['clean_accuracy']:.1%}): {label}\n\n"
            + markdown_table(["precision", "robust acc", "attack time", "points differing from fp32",
                              "bf16-robust points its bf16 pass calls fooled"], agree_body, "lrrrr"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see ``--help``); device-dependent defaults are filled in by :func:`main`."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=None, help="ResNet-18 batch (default 64 on the CPU, 1024 on CUDA)")
    p.add_argument("--steps", type=int, default=None, help="PGD steps per timed call (default 5 on the CPU, 20 on CUDA)")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds (default 3, or 1 with --quick)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="also time torch.compile cases (default: on with CUDA, off on the CPU)")
    p.add_argument("--warm-cache", action="store_true",
                   help="reuse torch.compile's on-disk caches (default: a fresh cache directory, so compile time is "
                        "what a first run on a fresh machine pays)")
    p.add_argument("--agree-n", type=int, default=None, help="MNIST images for the agreement (default 200 CPU, 1000 CUDA)")
    p.add_argument("--agree-eps", type=float, default=0.1, help="Linf eps of the agreement run (default 0.1)")
    p.add_argument("--quick", action="store_true", help="1 timed round, half the images, section 'precision-quick'")
    add_run_args(p, "precision")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run both parts, print the tables and merge the figures into the device's results JSON."""
    args = parse_args(argv)
    device = setup_device(args.device, args.threads)
    cuda = device.type == "cuda"
    args.batch = args.batch or (1024 if cuda else 64)
    args.steps = args.steps or (20 if cuda else 5)
    args.repeats = args.repeats or (1 if args.quick else 3)
    args.compile = cuda if args.compile is None else args.compile
    args.agree_n = args.agree_n or (1000 if cuda else 200) // (2 if args.quick else 1)
    info = device_info(device)
    label = describe(info)
    cold = tempfile.TemporaryDirectory(prefix="inductor-cold-") if args.compile and not args.warm_cache else None
    if cold is not None:  # read by the compiler when it first compiles; the Triton cache lives under it too
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cold.name
    start = time.perf_counter()
    rows = throughput(args, device)
    log.info("agreement: PGD-40 on the zoo cnn, %d images, fp32 and bf16", args.agree_n)
    agree = agreement(args, device)
    elapsed = time.perf_counter() - start
    print(f"\n{report(rows, agree, label)}\n\nimage-steps/s: images through gradient passes per second of the PGD call "
          f"(median over {args.repeats} interleaved round(s)); x fp32: median over rounds of the speed ratio to fp32 "
          f"in the same round; first use: labels and the first PGD call (compilation included). Total {elapsed:.0f} s.")
    tf32 = {"cudnn": torch.backends.cudnn.allow_tf32, "matmul": torch.backends.cuda.matmul.allow_tf32}
    config = {k: v for k, v in vars(args).items() if k not in ("no_write", "section")}
    save_results(args, "precision", {
        "config": {**config, "model": "torchvision resnet18(num_classes=10), random weights, seed 0", "eps": 0.0,
                   "random_start": False, "allow_tf32": tf32, "torch_threads": torch.get_num_threads(),
                   "compile_cache": None if not args.compile else "warm" if args.warm_cache else "cold"},
        "total_seconds": elapsed, "rows": rows, "agreement": agree}, info)


if __name__ == "__main__":
    main()
