"""Peak memory of a stretch of work: CUDA allocations on a GPU, resident memory on a Linux CPU."""

from __future__ import annotations

from pathlib import Path

import torch

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


class PeakMemory:
    """Measure how far memory rose above its level at the start, in MiB.

    On CUDA: ``torch.cuda.max_memory_allocated`` over the allocated bytes at the start. On a
    Linux CPU: the process's peak resident set (VmHWM, reset through ``/proc/self/clear_refs``)
    over its resident set at the start; it counts every allocation of the process, not only
    tensors. Elsewhere ``mib`` stays None.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.base: int | None = None
        self.mib: float | None = None

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
        elif _reset_cpu_peak():
            self.base = _status_kib("VmRSS") * 1024
        return self

    def __exit__(self, *exc: object) -> None:
        if self.base is None:
            return
        peak = torch.cuda.max_memory_allocated(self.device) if self.device.type == "cuda" else _status_kib("VmHWM") * 1024
        self.mib = max(peak - self.base, 0) / 2**20


def _reset_cpu_peak() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
        return _status_kib("VmHWM") > 0
    except OSError:
        return False


def _status_kib(key: str) -> int:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0
