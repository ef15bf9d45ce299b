"""Our preprocessing defenses against IBM ART's on the same batches, in one process.

Cases (quality 75; bit depth 1 on MNIST, 5 on CIFAR; median windows 3 and 2):

* ``jpeg``: ours ``create_defense("jpeg", quality=75)`` (baseline JPEG as batched tensor
  ops, ``backend="tensor"``) and ``backend="codec"`` (torchvision's libjpeg-turbo, nvJPEG on
  CUDA), against ``JpegCompression(clip_values=(0, 1), quality=75, channels_first=True)``
  (PIL, one image at a time).
* ``feature-squeezing``: ``create_defense("feature-squeezing", bit_depth=b)`` against
  ``FeatureSqueezing(clip_values=(0, 1), bit_depth=b)``.
* ``spatial-smoothing``: ``create_defense("spatial-smoothing", window=w)`` against
  ``SpatialSmoothing(window_size=w, channels_first=True, clip_values=(0, 1))`` (scipy).

Ours is timed as ``defense.transform(x, (0, 1))`` on a float tensor on the benchmark's
device; ART as ``defence(x.cpu().numpy())`` with the conversion back to a tensor on the
device inside the timing (free on the CPU, a copy each way on CUDA).

Batches: 4096 MNIST test images (1x28x28), and 4096 CIFAR-shaped images (3x32x32): by
default the 20 CIFAR-10 images shipped with Foolbox, each in 205 variants (reflect-padded
by 4 pixels and cropped at a distinct offset, flipped horizontally and/or vertically);
``--cifar random`` uses uniform random grey levels instead (seed 0), the worst case for a
JPEG coder. Every pixel is an exact multiple of 1/255, so ART's truncating conversion to
uint8 loses nothing.

Agreement is measured on the outputs of the first timed run: mean and max absolute
difference from ART's output in grey levels (x 255) and the share of values that differ.
Run ``python benchmarks/bench_defenses.py --help`` for the flags.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

import robust
from common import (
    add_run_args,
    save_results,
    script_logger,
    describe, device_info, fmt_seconds, markdown_table, median, setup_device, time_interleaved,
)

log = script_logger("bench_defenses")
BOUNDS = (0.0, 1.0)
QUALITY = 75
BITS = {"mnist": 1, "cifar": 5}
CHEAP_FACTOR = 4  # feature squeezing takes milliseconds, so it gets more timed rounds
Runner = Callable[[], torch.Tensor]


@dataclass(frozen=True)
class Case:
    """One defense setting: our plugin (one or more backends) and ART's equivalent."""

    label: str
    name: str
    params: dict[str, Any]
    art: Callable[[], Any]
    backends: dict[str, dict[str, Any]] = field(default_factory=lambda: {"ours": {}})


def cases_for(shape: str, windows: tuple[int, ...]) -> list[Case]:
    """The defense settings for one batch shape."""
    from art.defences.preprocessor import FeatureSqueezing, JpegCompression, SpatialSmoothing

    bits = BITS[shape]
    found = [
        Case(f"jpeg q{QUALITY}", "jpeg", {"quality": QUALITY},
             lambda: JpegCompression(clip_values=BOUNDS, quality=QUALITY, channels_first=True),
             {"ours": {"backend": "tensor"}, "ours-codec": {"backend": "codec"}}),
        Case(f"feature-squeezing {bits} bit", "feature-squeezing", {"bit_depth": bits},
             lambda: FeatureSqueezing(clip_values=BOUNDS, bit_depth=bits)),
    ]
    found += [Case(f"spatial-smoothing {w}x{w}", "spatial-smoothing", {"window": w},
                   partial(SpatialSmoothing, window_size=w, channels_first=True, clip_values=BOUNDS))
              for w in windows]
    return found


# --------------------------------------------------------------------------- data

def mnist_batch(n: int) -> torch.Tensor:
    """The first ``n`` MNIST test images, (n, 1, 28, 28) in [0, 1]."""
    return robust.load_dataset("mnist", n=n).x


def cifar_batch(n: int, source: str) -> torch.Tensor:
    """``n`` CIFAR-shaped images (n, 3, 32, 32) in [0, 1]: variants of Foolbox's samples, or random."""
    if source == "random":
        gen = torch.Generator().manual_seed(0)
        return torch.randint(0, 256, (n, 3, 32, 32), generator=gen).float() / 255
    import foolbox
    from PIL import Image

    files = sorted((Path(foolbox.__file__).parent / "data").glob("cifar10_*.png"))
    if not files:
        raise FileNotFoundError("no cifar10_*.png in Foolbox's data folder; use --cifar random")
    base = torch.stack([torch.from_numpy(np.asarray(Image.open(f).convert("RGB"))).permute(2, 0, 1) for f in files])
    padded = F.pad(base.float(), (4, 4, 4, 4), mode="reflect")
    out = []
    for i in range(n):
        v = i // len(files)
        dy, dx = divmod(v >> 2, 9)
        img = padded[i % len(files), :, dy:dy + 32, dx:dx + 32]
        img = img.flip(2) if v & 1 else img
        out.append(img.flip(1) if v & 2 else img)
    return torch.stack(out) / 255


# --------------------------------------------------------------------------- runners

def runners(case: Case, x: torch.Tensor) -> dict[str, Runner]:
    """One callable per method (our backends, then ``art``); each returns the batch on x's device."""
    found: dict[str, Runner] = {}
    for method, extra in case.backends.items():
        defense = robust.create_defense(case.name, **case.params, **extra)
        found[method] = partial(defense.transform, x, BOUNDS)
    defence = case.art()

    def art() -> torch.Tensor:  # ART's feature squeezing returns float64 (numpy 2): cast back, as a caller would
        out, _ = defence(x.cpu().numpy())
        return torch.from_numpy(np.ascontiguousarray(out)).to(x.device, x.dtype)
    found["art"] = art
    return found


def warm(cases: dict[str, Runner]) -> tuple[dict[str, Runner], dict[str, str]]:
    """One untimed call per method (the warm-up); methods that raise are dropped with their error."""
    kept, errors = {}, {}
    for method, fn in cases.items():
        try:
            fn()
            kept[method] = fn
        except Exception as exc:  # noqa: BLE001 - a backend missing on this device is reported, not fatal
            errors[method] = f"{type(exc).__name__}: {exc}"
            log.warning("%s failed: %s", method, errors[method])
    return kept, errors


def agreement(out: torch.Tensor, ref: torch.Tensor) -> dict[str, float]:
    """Mean, 99th percentile and max absolute difference in grey levels, and the share of values that differ."""
    diff = ((out.detach().cpu().double() - ref.cpu().double()).abs() * 255).flatten()
    p99 = diff.kthvalue(max(1, int(0.99 * diff.numel()))).values
    return {"mean_abs_diff_grey": float(diff.mean()), "p99_abs_diff_grey": float(p99),
            "max_abs_diff_grey": float(diff.max()), "share_differing": float((out.cpu() != ref.cpu()).double().mean())}


def bench_case(shape: str, case: Case, x: torch.Tensor, repeats: int, device: torch.device) -> list[dict[str, Any]]:
    """Time every method on ``x`` in interleaved rounds; compare each output with ART's."""
    cases, errors = warm(runners(case, x))
    times, outputs = time_interleaved(cases, device, repeats=repeats, warmup=0)
    rows = []
    for method in [*case.backends, "art"]:
        row: dict[str, Any] = {"shape": shape, "defense": case.name, "setting": case.label, "params": case.params,
                               "method": method, "batch": len(x), "image_shape": list(x.shape[1:])}
        if method not in cases:
            rows.append({**row, "error": errors.get(method, "not run")})
            continue
        seconds = median(times[method])
        row.update(seconds=seconds, seconds_all=times[method], images_per_s=len(x) / seconds)
        if "art" in cases:
            row["speedup_vs_art"] = median([a / t for a, t in zip(times["art"], times[method])])
            row.update(agreement(outputs[method], outputs["art"]))
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- report

def table(rows: list[dict[str, Any]], label: str) -> str:
    """The markdown table of every row, headed by the device label."""
    headers = ["batch", "defense", "method", "seconds / batch", "images/s", "speed-up vs ART",
               "mean abs diff (grey)", "p99 abs diff", "max abs diff", "values differing"]
    body = []
    for r in rows:
        batch = f"{r['batch']} x {'x'.join(map(str, r['image_shape']))} ({r['shape']})"
        if "error" in r:
            body.append([batch, r["setting"], r["method"], "failed: " + r["error"][:60], *["-"] * 6])
            continue
        agree = ("-",) * 4 if r["method"] == "art" or "mean_abs_diff_grey" not in r else (
            f"{r['mean_abs_diff_grey']:.3f}", f"{r['p99_abs_diff_grey']:.0f}", f"{r['max_abs_diff_grey']:.0f}",
            f"{r['share_differing']:.2%}")
        body.append([batch, r["setting"], r["method"], fmt_seconds(r["seconds"]), f"{r['images_per_s']:,.0f}",
                     f"{r['speedup_vs_art']:.2f}x" if "speedup_vs_art" in r else "-", *agree])
    return f"Device: {label}\n\n" + markdown_table(headers, body, "lllrrrrrrr")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see ``--help``)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=None,
                   help=f"timed rounds (feature squeezing gets {CHEAP_FACTOR}x as many); default 5, or 1 with --quick")
    p.add_argument("--quick", action="store_true", help="one timed round, results to section 'defenses-quick'")
    p.add_argument("--n", type=int, default=4096, help="images per batch (default 4096)")
    p.add_argument("--shapes", default="mnist,cifar", help="mnist, cifar or both (default)")
    p.add_argument("--defenses", default="jpeg,feature-squeezing,spatial-smoothing",
                   help="defenses to time, comma-separated (default all three)")
    p.add_argument("--windows", default="3,2", help="median windows for spatial smoothing (default 3,2)")
    p.add_argument("--cifar", choices=("real", "random"), default="real",
                   help="CIFAR-shaped batch: variants of Foolbox's 20 CIFAR-10 samples (default) or random grey levels")
    add_run_args(p, "defenses")
    return p.parse_args(argv)


def run_all(args: argparse.Namespace, device: torch.device, repeats: int, label: str) -> list[dict[str, Any]]:
    """Every (shape, defense setting) case, in order."""
    wanted = set(args.defenses.split(","))
    windows = tuple(int(w) for w in args.windows.split(","))
    rows: list[dict[str, Any]] = []
    for shape in args.shapes.split(","):
        x = (mnist_batch(args.n) if shape == "mnist" else cifar_batch(args.n, args.cifar)).to(device).contiguous()
        for case in cases_for(shape, windows):
            if case.name not in wanted:
                continue
            reps = repeats * (CHEAP_FACTOR if case.name == "feature-squeezing" else 1)
            log.info("%s %s, batch %d, %d timed rounds on %s", shape, case.label, len(x), reps, label)
            rows += bench_case(shape, case, x, reps, device)
    return rows




def payload(args: argparse.Namespace, repeats: int, rows: list[dict[str, Any]], elapsed: float) -> dict[str, Any]:
    """What goes into the results JSON: the settings, library versions and every row."""
    import art
    import PIL
    import scipy
    import torchvision

    return {
        "config": {
            "batch": args.n, "shapes": args.shapes.split(","), "jpeg_quality": QUALITY, "bit_depth": BITS,
            "windows": [int(w) for w in args.windows.split(",")], "cifar_source": args.cifar, "bounds": BOUNDS,
            "timed_rounds": {"default": repeats, "feature-squeezing": CHEAP_FACTOR * repeats},
            "warmup": "one untimed call per method", "torch_threads": torch.get_num_threads(),
            "versions": {"art": art.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
                         "pillow": PIL.__version__, "torchvision": torchvision.__version__},
        },
        "total_seconds": elapsed,
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> None:
    """Run every case, print the table and merge the figures into the device's results JSON."""
    args = parse_args(argv)
    device = setup_device(args.device, args.threads)
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 5)
    info = device_info(device)
    start = time.perf_counter()
    rows = run_all(args, device, repeats, describe(info))
    elapsed = time.perf_counter() - start
    print(f"\n{table(rows, describe(info))}\n\nseconds: median over rounds for the whole batch; speed-up vs ART: "
          f"median over rounds of (ART / method) in the same round; diffs against ART's output, in grey levels. "
          f"{repeats} timed rounds ({CHEAP_FACTOR * repeats} for feature squeezing); total {elapsed:.0f} s.")
    save_results(args, "defenses", payload(args, repeats, rows, elapsed), info)


if __name__ == "__main__":
    main()
