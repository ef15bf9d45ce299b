"""The environment recorded with every result: versions, device and command line."""

from __future__ import annotations

import platform
import sys
from typing import Any

import torch


def environment(device: torch.device, command: str | None) -> dict[str, Any]:
    """Versions, device and command line, recorded with every result."""
    from robust import __version__

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    return {
        "python": platform.python_version(), "torch": torch.__version__, "robust": __version__,
        "device": str(device), "device_name": name, "platform": platform.platform(),
        "command": command if command is not None else " ".join(sys.argv),
    }
