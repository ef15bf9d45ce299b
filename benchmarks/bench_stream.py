"""Streaming evaluation: peak memory against the number of images, and images per second.

Writes synthetic 3x224x224 JPEG image folders (ImageNet validation layout: WordNet-id class
folders) of ``--small`` and ``--large`` images, then evaluates a tiny CNN on each under FGSM
with ``robust.evaluate(model, FOLDER, "fgsm", ...)``, each run in a fresh process, and reads
that process's peak resident memory (VmHWM; the DataLoader workers hold only the batches in
flight and are not counted). Target: the larger run's peak at most 1.3x the smaller's; as a
single float tensor, 5,000 such images alone are 3 GB.

Run ``python benchmarks/bench_stream.py --help`` for the flags.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from common import add_run_args, describe, device_info, markdown_table, save_results, script_logger, setup_device

log = script_logger("bench_stream")
TARGET = 1.3
WNIDS = ["n01440764", "n01443537", "n01484850", "n01491361", "n01494475"]  # the first five ImageNet classes


def write_folder(root: Path, n: int, size: int = 224, seed: int = 0) -> None:
    """``n`` random-texture JPEGs of ``size`` x ``size``, spread over five WordNet-id folders."""
    from torchvision.io import encode_jpeg

    g = torch.Generator().manual_seed(seed)
    for wnid in WNIDS:
        (root / wnid).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        coarse = torch.randint(0, 256, (3, size // 8, size // 8), generator=g, dtype=torch.uint8)
        image = coarse.repeat_interleave(8, 1).repeat_interleave(8, 2)
        (root / WNIDS[i % len(WNIDS)] / f"{i:06d}.jpg").write_bytes(encode_jpeg(image, quality=90).numpy().tobytes())


def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 8, stride=8), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(4),
                               torch.nn.Flatten(), torch.nn.Linear(128, 1000))


def child(folder: str, device: str, batch: int, workers: int | None) -> None:
    """One evaluation in this process; prints its figures as JSON."""
    import robust

    model = robust.Classifier(tiny_model(), device=device)
    start = time.perf_counter()
    result = robust.evaluate(model, folder, "fgsm", eps=2 / 255, batch_size=batch, workers=workers)
    seconds = time.perf_counter() - start
    peak = int(next(line.split()[1] for line in Path("/proc/self/status").read_text().splitlines()
                    if line.startswith("VmHWM")))
    print(json.dumps({"n": result.n, "seconds": seconds, "images_per_second": result.n / seconds,
                      "peak_rss_mib": peak / 1024, "classes": len(result.classes)}))


def measure(folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", str(folder), "--device", args.device, "--batch", str(args.batch)]
    if args.workers is not None:
        cmd += ["--workers", str(args.workers)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the evaluation of {folder} failed:\n{done.stderr}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--small", type=int, default=500)
    p.add_argument("--large", type=int, default=5000)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: robust's, up to 4)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    add_run_args(p, "stream")
    args = p.parse_args()
    if args.child:
        return child(args.child, args.device, args.batch, args.workers)
    device = setup_device(args.device, args.threads)
    info = device_info(device)
    log.info("%s", describe(info))
    rows, runs = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (args.small, args.large):
            folder = Path(tmp) / f"imagenet-{n}"
            start = time.perf_counter()
            write_folder(folder, n)
            log.info("wrote %d JPEGs in %.1f s; evaluating", n, time.perf_counter() - start)
            runs[n] = measure(folder, args)
            rows.append([n, f"{runs[n]['peak_rss_mib']:.0f} MiB", f"{runs[n]['seconds']:.1f} s",
                         f"{runs[n]['images_per_second']:.0f}"])
    ratio = runs[args.large]["peak_rss_mib"] / runs[args.small]["peak_rss_mib"]
    print(markdown_table(["images", "peak resident memory", "evaluate time", "images/s"], rows, "rrrr"))
    print(f"peak memory ratio {args.large} / {args.small} images: {ratio:.2f}x (target: at most {TARGET}x); "
          f"as one float tensor the larger set alone would be {args.large * 3 * 224 * 224 * 4 / 2**30:.2f} GiB")
    save_results(args, "stream", {"runs": runs, "ratio": ratio, "target": TARGET}, info)


if __name__ == "__main__":
    main()
