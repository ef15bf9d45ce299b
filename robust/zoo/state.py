"""State dicts and training checkpoints, read with ``weights_only=True``.

A file that carries pickled Python objects is refused, since unpickling can run arbitrary
code. The one class let through is ``argparse.Namespace``: timm's training checkpoints
store their command-line arguments in one, and it holds plain values only.
"""

from __future__ import annotations

import argparse
import contextlib
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robust.errors import RobustError

PREFIXES = ("module.", "_orig_mod.")
"""Key prefixes that wrappers add (DistributedDataParallel, torch.compile); removed on reading."""


def read_state_dict(path: Path, keys: Sequence[str] = ("state_dict",)) -> dict[str, torch.Tensor]:
    """Read a state dict with ``weights_only=True``; refuse pickled payloads with a reason.

    Args:
        path: a file written by ``torch.save``.
        keys: for a checkpoint (a dict that holds the state dict under a key), the keys to
            look under, first found wins; a plain state dict is returned as it is.
    """
    if not path.is_file():
        raise RobustError(f"weights file not found: {path} (weights are read from local files; nothing is downloaded)")
    state = _unwrap(_load(path), keys)
    if not isinstance(state, dict) or not state:
        raise RobustError(f"{path} does not hold a state dict (a mapping of names to tensors)")
    return state


def _load(path: Path) -> Any:
    allowed = getattr(torch.serialization, "safe_globals", None)
    guard = allowed([argparse.Namespace]) if allowed is not None else contextlib.nullcontext()
    try:
        with guard:
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise RobustError(f"refused to load {path}: it carries pickled Python objects, which could run code; "
                          "save a plain state dict (torch.save(model.state_dict(), path))") from exc
    except Exception as exc:
        raise RobustError(f"cannot read weights {path}: {str(exc).splitlines()[0]}") from exc


def _unwrap(state: Any, keys: Sequence[str]) -> Any:
    if isinstance(state, dict):
        for key in keys:
            if isinstance(state.get(key), dict):
                return state[key]
    return state


def without_prefixes(state: dict[str, Any]) -> dict[str, Any]:
    """``state`` without the prefixes that every key shares from a wrapper (:data:`PREFIXES`)."""
    for prefix in PREFIXES:
        if all(isinstance(k, str) and k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def load_state(module: nn.Module, path: Path, state: dict[str, torch.Tensor] | None = None) -> None:
    """Load a state-dict file into ``module`` (or ``state``, already read from it), with a clear error on a mismatch.

    Keys saved through a wrapper (``module.`` of DistributedDataParallel, ``_orig_mod.`` of
    ``torch.compile``) fit too: when the keys as saved do not, they are tried without the prefix.
    """
    state = read_state_dict(path) if state is None else state
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        stripped = without_prefixes(state)
        if stripped is not state and _fits(module, stripped):
            return
        detail = " ".join(str(exc).split())
        raise RobustError(f"weights {path} do not fit the model: {detail[:400]}") from exc


def _fits(module: nn.Module, state: dict[str, torch.Tensor]) -> bool:
    try:
        module.load_state_dict(state)
    except RuntimeError:
        return False
    return True


def num_outputs(state: dict[str, torch.Tensor]) -> int:
    """The number of classes: the rows of the last matrix (linear layer) in ``state``."""
    matrices = [v for v in state.values() if torch.is_tensor(v) and v.ndim == 2]
    if not matrices:
        raise RobustError("cannot tell the number of classes: the weights hold no linear layer")
    return int(matrices[-1].shape[0])
