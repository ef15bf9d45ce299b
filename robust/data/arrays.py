"""Data held in memory: ``ArrayDataset`` (images and labels as tensors) and array files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from robust.errors import RobustError

Data = tuple[torch.Tensor, torch.Tensor] | Dataset[Any] | DataLoader[Any]


@dataclass
class ArrayDataset(Dataset):
    """Images ``x`` (N, C, H, W) float32 in ``bounds`` and integer labels ``y`` (N,)."""

    x: torch.Tensor
    y: torch.Tensor
    name: str = "data"
    classes: list[str] = field(default_factory=list)
    bounds: tuple[float, float] = (0.0, 1.0)
    credit: str = ""

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.y[i]

    @property
    def num_classes(self) -> int:
        return len(self.classes) if self.classes else int(self.y.max()) + 1

    def head(self, n: int | None) -> ArrayDataset:
        """The first ``n`` samples (all when ``n`` is None)."""
        if n is None:
            return self
        if n <= 0:
            raise RobustError(f"--n must be a positive number of samples, got {n}")
        return ArrayDataset(self.x[:n], self.y[:n], self.name, self.classes, self.bounds, self.credit)


def load_array_file(path: Path) -> ArrayDataset:
    """A ``.npz`` or ``.pt`` file holding ``x`` (N,C,H,W or N,H,W) and ``y`` (N,)."""
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    else:
        try:
            arrays = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises several types for bad or pickled files
            raise RobustError(f"cannot read {path} as a tensor file: {str(exc).splitlines()[0]}") from exc
    if not isinstance(arrays, dict) or "x" not in arrays or "y" not in arrays:
        raise RobustError(f"{path} must hold two arrays named 'x' and 'y'")
    x = torch.as_tensor(np.asarray(arrays["x"]) if not torch.is_tensor(arrays["x"]) else arrays["x"])
    y = torch.as_tensor(np.asarray(arrays["y"]) if not torch.is_tensor(arrays["y"]) else arrays["y"])
    return as_dataset(x, y, path.stem)


def as_dataset(x: torch.Tensor, y: torch.Tensor, name: str) -> ArrayDataset:
    """Checked images (uint8 scaled to [0, 1], (N, H, W) given a channel) and labels as an ArrayDataset."""
    if x.dtype == torch.uint8:
        x = x.float() / 255.0
    if x.ndim == 3:
        x = x.unsqueeze(1)
    if x.ndim != 4:
        raise RobustError(f"images must have shape (N, C, H, W) or (N, H, W), got {tuple(x.shape)}")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise RobustError(f"labels must have shape ({x.shape[0]},), got {tuple(y.shape)}")
    if y.dtype.is_floating_point or y.dtype == torch.bool:
        raise RobustError(f"labels must be integers, got {y.dtype}")
    return ArrayDataset(x.float().contiguous(), y.long(), name)


def check_xy(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` float and ``y`` 1-d integer of the same length, detached on the CPU; else a RobustError."""
    if len(x) == 0:
        raise RobustError("the dataset is empty")
    if len(x) != len(y):
        raise RobustError(f"{len(x)} inputs but {len(y)} labels")
    if not x.dtype.is_floating_point:
        raise RobustError(f"inputs must be floating point, got {x.dtype}")
    if y.dtype.is_floating_point or y.dtype == torch.bool or y.ndim != 1:
        raise RobustError(f"labels must be a 1-d integer tensor, got {y.dtype} of shape {tuple(y.shape)}")
    return x.detach().cpu(), y.detach().cpu().long()
