"""Shared helpers for the benchmarks: device, timing, peak memory, results JSON, tables.

Every benchmark script runs unchanged on a CPU-only machine and on a CUDA machine:
:func:`pick_device` takes CUDA when it is available, and the timing and memory helpers
synchronise with the GPU where one is used.

Timing. :func:`time_interleaved` runs each case once untimed (warm-up), then times the
cases in interleaved rounds (round r starts at case r mod k, so no case always follows
the same neighbour); callers report the median over rounds. Garbage is collected before
each timed call, outside the clock, and long-lived objects are frozen (``gc.freeze``) so
that collection takes microseconds rather than the 0.1 s it takes with torch, Foolbox and
ART loaded. A per-round ratio against a
baseline case (:func:`paired_ratios`) pairs runs made seconds apart, which is what a
shared, noisy machine needs: a load spike inflates both members of a pair.

Peak memory, measured in a separate untimed run (:func:`peak_memory`):

* CUDA: ``torch.cuda.max_memory_allocated`` minus the bytes allocated before the call
  (tensor memory through the caching allocator; the allocator's reserve is not counted).
* CPU (Linux with glibc): the rise of the process's peak resident set size (``VmHWM``,
  reset through ``/proc/self/clear_refs``) over the resident size just before the call.
  Before CPU memory runs, :func:`prepare_cpu_memory` tells glibc's malloc to hand blocks of
  64 KiB and more straight back to the OS, so that memory freed by an earlier run cannot
  hide a later run's peak. This counts everything the process touches during the call
  (torch tensors, numpy arrays, Python objects), at page granularity. It changes malloc's
  behaviour for the rest of the process, so run it after all timings. Elsewhere it is None.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import logging
import os
import platform
import re
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

RESULTS_DIR = Path(__file__).resolve().parent / "results"
MiB = 2**20


# --------------------------------------------------------------------------- device

def pick_device(name: str | None = None) -> torch.device:
    """``None``/``"auto"``: CUDA when available, else the CPU; otherwise ``torch.device(name)``."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def cpu_name() -> str:
    """The processor's model name (/proc/cpuinfo, else platform.processor(), else 'unknown CPU')."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def cpu_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def device_info(device: torch.device) -> dict[str, Any]:
    """What the figures were measured on: a human label, a file-name slug and versions."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        label = f"{name} (CUDA {torch.version.cuda})"
    else:
        name = cpu_name()
        label = f"CPU ({cpu_cores()} cores) {name}"
    slug = re.sub(r"[^a-z0-9]+", "-", f"{device.type}-{name}".lower()).strip("-")
    if device.type == "cpu":
        slug += f"-{cpu_cores()}c"
    return {
        "label": label, "slug": slug, "type": device.type, "name": name,
        "cpu": cpu_name(), "cpu_cores": cpu_cores(), "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__, "python": platform.python_version(),
    }


def describe(info: dict[str, Any]) -> str:
    """The device label, with the torch thread count on a CPU."""
    if info["type"] != "cpu":
        return str(info["label"])
    threads = info["torch_threads"]
    return f"{info['label']}, {threads} torch thread{'s' if threads != 1 else ''}"


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so a clock read after it counts that work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --------------------------------------------------------------------------- timing

def settle() -> None:
    """Collect garbage and freeze what survives, so later collections are cheap (microseconds)."""
    gc.collect()
    gc.freeze()


def time_once(fn: Callable[[], Any], device: torch.device) -> tuple[float, Any]:
    """Seconds one call of ``fn`` takes (GPU work included), and what it returned."""
    gc.collect()
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - start, out


def time_interleaved(
    cases: dict[str, Callable[[], Any]], device: torch.device, repeats: int, warmup: int = 1,
    warmup_cases: dict[str, Callable[[], Any]] | None = None,
) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """Time each case ``repeats`` times in interleaved rounds, after ``warmup`` untimed rounds.

    Args:
        cases: name -> callable; the first name is the natural baseline.
        device: where the work runs (for synchronisation).
        repeats: timed rounds; round r starts at case r mod len(cases).
        warmup: untimed rounds before timing.
        warmup_cases: cheaper stand-ins for the warm-up rounds (same code paths and shapes,
            e.g. one attack step instead of ten); default: ``cases`` themselves.

    Returns:
        per-case lists of seconds (in round order) and each case's output from its first timed run.
    """
    names = list(cases)
    times: dict[str, list[float]] = {n: [] for n in names}
    outputs: dict[str, Any] = {}
    for _ in range(warmup):
        for n in names:
            (warmup_cases or cases)[n]()
    settle()
    for r in range(repeats):
        for n in names[r % len(names):] + names[:r % len(names)]:
            seconds, out = time_once(cases[n], device)
            times[n].append(seconds)
            outputs.setdefault(n, out)
    return times, outputs


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def paired_ratios(times: dict[str, list[float]], baseline: str) -> dict[str, float]:
    """Median over rounds of ``case / baseline`` (runs of one round are seconds apart)."""
    base = times[baseline]
    return {n: median([t / b for t, b in zip(ts, base)]) for n, ts in times.items()}


# --------------------------------------------------------------------------- memory

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def _libc() -> Any | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "mallopt") else None
    except OSError:
        return None


def _proc_status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def cpu_memory_supported() -> bool:
    """Whether peak RSS can be reset and read here (Linux with glibc, writable clear_refs)."""
    if _libc() is None:
        return False
    try:
        Path("/proc/self/clear_refs").write_text("5")
        _proc_status_kib("VmHWM")
        return True
    except (OSError, KeyError):
        return False


def prepare_cpu_memory() -> None:
    """Make glibc return blocks of 64 KiB and more to the OS on free (see the module notes)."""
    libc = _libc()
    if libc is not None:
        libc.mallopt(_M_MMAP_THRESHOLD, 64 * 1024)
        libc.mallopt(_M_TRIM_THRESHOLD, 128 * 1024)
        libc.malloc_trim(0)


def peak_memory(fn: Callable[[], Any], device: torch.device) -> int | None:
    """Bytes by which memory rose at its peak during one call of ``fn`` (None where unmeasurable)."""
    gc.collect()
    if device.type == "cuda":
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        sync(device)
        return int(torch.cuda.max_memory_allocated(device) - before)
    libc = _libc()
    if libc is None or not cpu_memory_supported():
        return None
    libc.malloc_trim(0)
    before = _proc_status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")
    fn()
    return max(0, _proc_status_kib("VmHWM") - before) * 1024


def memory_method(device: torch.device) -> str:
    """One line saying what the memory column measures on ``device``."""
    if device.type == "cuda":
        return "torch.cuda.max_memory_allocated minus allocated bytes before the call (tensor memory)"
    if cpu_memory_supported():
        return ("rise of peak RSS (VmHWM reset via /proc/self/clear_refs) over RSS before the call, "
                "glibc malloc set to unmap blocks >= 64 KiB; counts torch, numpy and Python memory")
    return "not measured on this platform"


# --------------------------------------------------------------------------- checks

@torch.no_grad()
def verify(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, x_adv: torch.Tensor, eps: float,
           norm: str = "linf", bounds: tuple[float, float] = (0.0, 1.0), tol: float = 1e-6) -> dict[str, Any]:
    """Robust accuracy by one code path for every method: bounds, the eps ball, the model's prediction.

    A sample outside ``bounds`` or the ``norm`` ball of radius ``eps`` counts as not fooled
    (the attack broke the rules); ``invalid`` says how many did.
    """
    x_adv = x_adv.to(device=x.device, dtype=x.dtype)
    delta = (x_adv - x).flatten(1)
    dist = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
    flat = x_adv.flatten(1)
    valid = (dist <= eps + tol) & (flat >= bounds[0] - tol).all(1) & (flat <= bounds[1] + tol).all(1)
    was_training = net.training
    net.eval()
    correct = net(x_adv).argmax(1) == y
    net.train(was_training)
    return {"robust_accuracy": float((correct | ~valid).float().mean()), "invalid": int((~valid).sum()),
            "max_distance": float(dist.max())}


@torch.no_grad()
def verify_minimization(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, x_adv: torch.Tensor,
                        bounds: tuple[float, float] = (0.0, 1.0), tol: float = 1e-6) -> dict[str, torch.Tensor]:
    """Per-sample verdicts for a minimization attack (no eps), by one code path for every method.

    A sample succeeds when its output is finite, inside ``bounds`` and misclassified by ``net``
    (re-run here, in eval mode); ``l2`` is the L2 distance to ``x`` in input space. ``blank``
    marks all-zero outputs for inputs that are not all zero (Foolbox's CW returns one where it
    found nothing; the model may still misclassify it).
    """
    x_adv = x_adv.to(device=x.device, dtype=x.dtype)
    flat = x_adv.flatten(1)
    valid = torch.isfinite(flat).all(1) & (flat >= bounds[0] - tol).all(1) & (flat <= bounds[1] + tol).all(1)
    was_training = net.training
    net.eval()
    fooled = net(torch.where(valid.view(-1, *([1] * (x.ndim - 1))), x_adv, x)).argmax(1) != y
    net.train(was_training)
    blank = (flat == 0).all(1) & (x.flatten(1) != 0).any(1)
    return {"success": fooled & valid, "invalid": ~valid, "blank": blank, "l2": (x_adv - x).flatten(1).norm(dim=1)}


# --------------------------------------------------------------------------- results

def results_path(info: dict[str, Any], folder: Path = RESULTS_DIR) -> Path:
    return folder / f"{info['slug']}.json"


def write_results(section: str, payload: dict[str, Any], info: dict[str, Any], path: Path | None = None) -> Path:
    """Store ``payload`` under ``sections[section]`` of the device's JSON, keeping other sections.

    Several scripts can share one file per device; the write is atomic (tmp file, rename).
    """
    path = path or results_path(info)
    path.parent.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError:
            data = {}
    data["device"] = info
    data.setdefault("sections", {})[section] = {
        **payload, "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)
    return path


# --------------------------------------------------------------------------- tables

def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], align: str = "") -> str:
    """A GitHub markdown table; ``align`` holds one of l/r/c per column (default: left)."""
    align = align.ljust(len(headers), "l")
    marks = {"l": ":---", "r": "---:", "c": ":---:"}
    cells = [[str(c) for c in row] for row in rows]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(marks[a] for a in align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)


def fmt_seconds(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.3f} s"


def fmt_bytes(n: int | None) -> str:
    return "n/a" if n is None else f"{n / MiB:.0f} MiB"


def setup_device(device_name: str, threads: int | None) -> torch.device:
    """The device, and the torch thread count (1 on a CPU unless told otherwise, 0 keeps torch's)."""
    device = pick_device(device_name)
    threads = threads if threads is not None else (1 if device.type == "cpu" else 0)
    if threads > 0:
        torch.set_num_threads(threads)
    return device


def script_logger(name: str) -> logging.Logger:
    """Progress lines on stderr from one benchmark script only (other libraries' loggers stay quiet)."""
    log = logging.getLogger(name)
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    warnings.filterwarnings("ignore")
    return log


def add_run_args(p: argparse.ArgumentParser, section: str) -> None:
    """The options every benchmark shares: device, threads, results section, and not writing."""
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: 1 on the CPU, torch's default with CUDA; 0 keeps torch's default)")
    p.add_argument("--section", default=None, help=f"results section (default {section}, or {section}-quick)")
    p.add_argument("--no-write", action="store_true", help="do not write benchmarks/results/<device>.json")


def save_results(args: argparse.Namespace, section: str, payload: dict[str, Any], info: dict[str, Any]) -> None:
    """Merge ``payload`` into the device's results JSON unless ``--no-write``, and say where."""
    if args.no_write:
        return
    name = args.section or (f"{section}-quick" if getattr(args, "quick", False) else section)
    print(f"wrote {write_results(name, payload, info)}")
