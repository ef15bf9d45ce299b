"""The environment recorded with every result: versions, device, precision and command line."""

from __future__ import annotations

import platform
import sys
from typing import Any

import torch

from robust.model import Classifier


def environment(model: Classifier, command: str | None) -> dict[str, Any]:
    """Versions, the model's device, precision and compilation, and the command line."""
    from robust import __version__

    device = model.device
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    return {
        "python": platform.python_version(), "torch": torch.__version__, "robust": __version__,
        "device": str(device), "device_name": name, "platform": platform.platform(),
        "precision": model.precision, "compiled": model.compiled,
        "command": command if command is not None else " ".join(sys.argv),
    }
