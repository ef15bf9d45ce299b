"""load_model(): zoo names, users' modules, TorchScript files and torchvision architectures.

Weights are read with ``weights_only=True``: a file that carries pickled Python objects
is refused, since unpickling can run arbitrary code.
"""

from __future__ import annotations

import importlib
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robust.errors import RobustError, suggest
from robust.model import Classifier
from robust.zoo.catalog import ZOO, load_zoo_module


def load_model(name: str, *, weights: str | None = None, device: str | torch.device | None = None) -> Classifier:
    """Load a model as a :class:`~robust.Classifier` (bounds (0, 1) unless a zoo entry says otherwise).

    Args:
        name: a zoo name (``cnn``, ``resnet``), ``package.module:attribute`` naming an
            ``nn.Module`` or a factory that returns one, a TorchScript file, or a
            torchvision architecture name (which then needs ``weights``).
        weights: a state-dict file loaded into the module (``weights_only=True``).
        device: "auto"/None, "cpu" or "cuda".
    """
    if name in ZOO and weights is None:
        clf = Classifier(load_zoo_module(name), bounds=ZOO[name].bounds, device=device)
    else:
        clf = Classifier(_build(name, weights), device=device)
    clf.name = name
    return clf


def build_architecture(name: str) -> nn.Module:
    """A freshly initialized network to train: a zoo architecture or ``package.module:attr``."""
    if name in ZOO:
        return ZOO[name].build()
    if ":" in name:
        return _from_import(name)
    raise RobustError(f"unknown architecture {name!r}{suggest(name, ZOO)}; "
                      f"use a zoo name ({', '.join(sorted(ZOO))}) or package.module:attr")


def _build(name: str, weights: str | None) -> nn.Module:
    if ":" in name and not Path(name).exists():
        module = _from_import(name)
    elif Path(name).is_file():
        module = _from_file(Path(name))
    elif name in ZOO:
        module = ZOO[name].build()
    else:
        module = _from_torchvision(name, weights)
    if weights is not None:
        load_state(module, Path(weights))
    return module.eval()


def _from_import(spec: str) -> nn.Module:
    mod_name, _, attr = spec.partition(":")
    try:
        obj: Any = importlib.import_module(mod_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise RobustError(f"cannot import model {spec!r}: {exc}") from exc
    if not isinstance(obj, nn.Module) and callable(obj):
        obj = obj()
    if not isinstance(obj, nn.Module):
        raise RobustError(f"{spec!r} is a {type(obj).__name__}, not a torch.nn.Module or a factory of one")
    return obj


def _from_file(path: Path) -> nn.Module:
    try:
        return torch.jit.load(str(path), map_location="cpu")
    except (RuntimeError, ValueError) as exc:
        raise RobustError(
            f"{path} is not a TorchScript file; for a state dict use --model ARCHITECTURE --weights {path}"
        ) from exc


def _from_torchvision(name: str, weights: str | None) -> nn.Module:
    import torchvision

    archs = torchvision.models.list_models()
    if name not in archs:
        raise RobustError(f"unknown model {name!r}{suggest(name, [*ZOO, *archs])}; use a zoo name ({', '.join(ZOO)}), "
                          "package.module:attribute, a TorchScript file, or a torchvision architecture with --weights")
    if weights is None:
        raise RobustError(f"torchvision architecture {name!r} needs --weights FILE (nothing is downloaded)")
    state = read_state_dict(Path(weights))
    return torchvision.models.get_model(name, weights=None, num_classes=_num_outputs(state))


def _num_outputs(state: dict[str, torch.Tensor]) -> int:
    matrices = [v for v in state.values() if torch.is_tensor(v) and v.ndim == 2]
    if not matrices:
        raise RobustError("cannot tell the number of classes: the weights hold no linear layer")
    return int(matrices[-1].shape[0])


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read a state dict with ``weights_only=True``; refuse pickled payloads with a reason."""
    if not path.is_file():
        raise RobustError(f"weights file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise RobustError(f"refused to load {path}: it carries pickled Python objects, which could run code; "
                          "save a plain state dict (torch.save(model.state_dict(), path))") from exc
    except Exception as exc:
        raise RobustError(f"cannot read weights {path}: {str(exc).splitlines()[0]}") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise RobustError(f"{path} does not hold a state dict (a mapping of names to tensors)")
    return state


def load_state(module: nn.Module, path: Path) -> None:
    """Load a state-dict file into ``module`` (``weights_only=True``), with a clear error on a mismatch."""
    try:
        module.load_state_dict(read_state_dict(path))
    except RuntimeError as exc:
        raise RobustError(f"weights {path} do not fit the model: {str(exc).splitlines()[0]}") from exc


def list_models() -> dict[str, str]:
    """Zoo models with their description and recorded clean accuracy."""
    from robust.zoo.catalog import zoo_cards

    cards = zoo_cards()
    out = {}
    for name, entry in ZOO.items():
        acc = cards.get(name, {}).get("clean_accuracy")
        stated = f"{acc:.2%} clean accuracy on the 10k MNIST test set" if acc is not None else "not trained"
        robust_acc = cards.get(name, {}).get("robust_accuracy")
        if robust_acc is not None:
            stated += f", {robust_acc:.2%} under PGD-40 at eps 0.3 on the first 1000"
        out[name] = f"{entry.description}; {stated}"
    return out
