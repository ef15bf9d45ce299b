"""load_model(): zoo names, timm and Hugging Face models, users' modules, TorchScript files and torchvision architectures.

Nothing is downloaded: weights are read from local files with ``weights_only=True``, and a file
that carries pickled Python objects is refused, since unpickling can run arbitrary code
(:mod:`~robust.zoo.state`). Each loader knows what its models expect (bounds, normalization,
the resize and crop of image files; :mod:`~robust.zoo.normalization`); what the caller gives
replaces it.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robust.errors import RobustError, suggest
from robust.model import Classifier, resolve_device
from robust.zoo.catalog import ZOO, load_zoo_module
from robust.zoo.normalization import IMAGENET, InputSettings, Overrides
from robust.zoo.state import load_state, num_outputs, read_state_dict

__all__ = ["build_architecture", "list_models", "load_model", "load_state", "read_state_dict"]


def load_model(name: str, *, weights: str | None = None, device: str | torch.device | None = None,
               bounds: Sequence[float] | None = None, mean: Sequence[float] | None = None,
               std: Sequence[float] | None = None, normalization: str | None = None) -> Classifier:
    """Load a model as a :class:`~robust.Classifier`.

    Args:
        name: a zoo name (``cnn``, ``resnet``); ``timm:NAME[:key=value,...]`` (keyword arguments
            for ``timm.create_model``); ``hf:FOLDER`` (a Hugging Face image classifier saved with
            ``save_pretrained``); ``torchvision:ARCH`` or a bare torchvision architecture name
            (which then needs ``weights``); ``package.module:attribute`` naming an ``nn.Module``,
            a factory of one, or a ready :class:`~robust.Classifier` (kept as it is); or a
            TorchScript file. ``robust list models`` describes each.
        weights: a local state-dict file (``weights_only=True``); for timm also a training checkpoint.
        device: "auto"/None, "cpu" or "cuda".
        bounds: (low, high) valid input values, replacing the loader's (mostly (0, 1)).
        mean: per-channel mean subtracted inside the model, with ``std``; replaces the loader's.
        std: per-channel standard deviation, with ``mean``.
        normalization: a preset instead of ``mean``/``std``: ``imagenet``, ``cifar10``,
            ``cifar100`` or ``none`` (no normalization, even where the loader has one).

    Loader defaults: torchvision, ImageNet mean/std with resize 256 and crop 224; timm, the
    model's ``pretrained_cfg``; Hugging Face, the folder's image processor; the rest, bounds
    (0, 1) and no normalization.

    Raises:
        RobustError: an unknown name, a missing file, weights that do not fit, contradictory
            settings, or settings given for a model that is already a Classifier.
    """
    overrides = Overrides(bounds, mean, std, normalization)
    overrides.check()
    module, defaults = _resolve(name, weights)
    if isinstance(module, Classifier):
        clf = _kept(module, name, overrides, device)
    else:
        found = overrides.apply(defaults)
        clf = Classifier(module, bounds=found.bounds, mean=found.mean, std=found.std, device=device,
                         preprocessing=found.preprocessing)
    clf.name = name
    return clf


def _resolve(name: str, weights: str | None) -> tuple[nn.Module, InputSettings]:
    """The module of ``name`` (weights loaded, eval mode) and what its loader knows about its inputs."""
    kind, _, rest = name.partition(":")
    if kind == "timm":
        from robust.zoo.timm_models import load_timm

        return load_timm(rest, weights)
    if kind == "hf":
        from robust.zoo.hf_models import load_hf

        return load_hf(rest, weights)
    if kind == "torchvision":
        return _from_torchvision(rest, weights).eval(), IMAGENET
    if name in ZOO:
        module = load_zoo_module(name) if weights is None else ZOO[name].build()
        return _weighted(module, weights), InputSettings(bounds=ZOO[name].bounds)
    if ":" in name and not Path(name).exists():
        return _weighted(_from_import(name), weights), InputSettings()
    if Path(name).is_file():
        return _weighted(_from_file(Path(name)), weights), InputSettings()
    return _from_torchvision(name, weights).eval(), IMAGENET


def _weighted(module: nn.Module, weights: str | None) -> nn.Module:
    if weights is not None:
        load_state(module.module if isinstance(module, Classifier) else module, Path(weights))
    return module.eval()


def _kept(clf: Classifier, name: str, overrides: Overrides, device: str | torch.device | None) -> Classifier:
    """A ready Classifier, as it is (on ``device`` when one is named); settings for it are an error."""
    if overrides.given():
        raise RobustError(f"{name} is already a robust.Classifier with its own bounds {clf.bounds}, mean and std; "
                          f"drop {', '.join(overrides.given())} (or return a plain torch.nn.Module)")
    if device is not None and device != "auto" and resolve_device(device) != clf.device:
        target = resolve_device(device)
        clf.module.to(target)
        clf.mean = None if clf.mean is None else clf.mean.to(target)
        clf.std = None if clf.std is None else clf.std.to(target)
        clf.device = target
    return clf


def build_architecture(name: str) -> nn.Module:
    """A freshly initialized network to train: a zoo architecture or ``package.module:attr``."""
    if name in ZOO:
        return ZOO[name].build()
    if ":" in name:
        return _from_import(name)
    raise RobustError(f"unknown architecture {name!r}{suggest(name, ZOO)}; "
                      f"use a zoo name ({', '.join(sorted(ZOO))}) or package.module:attr")


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
                          "timm:NAME, hf:FOLDER, package.module:attribute, a TorchScript file, or a torchvision "
                          "architecture with --weights")
    if weights is None:
        raise RobustError(f"torchvision architecture {name!r} needs --weights FILE: pretrained weights are never "
                          "downloaded, so give them as a local file")
    state = read_state_dict(Path(weights))
    module = torchvision.models.get_model(name, weights=None, num_classes=num_outputs(state))
    load_state(module, Path(weights), state)
    return module


LOADERS = {
    "torchvision:ARCH": "a torchvision architecture (also as a bare name, e.g. resnet50) with --weights FILE "
                        "(a state dict; the class count is read from it); ImageNet mean/std, resize 256 and "
                        "crop 224 unless --normalization or --mean/--std say otherwise",
    "timm:NAME[:k=v,...]": "timm.create_model(NAME, k=v, ...) without downloading, then --weights FILE (a state "
                           "dict or a timm training checkpoint, EMA weights first; the class count is read from it); "
                           "mean, std, input size and crop from the model's pretrained_cfg (the built img_size wins)",
    "hf:FOLDER": "a Hugging Face image classifier saved with save_pretrained (AutoModelForImageClassification); "
                 "mean, std, resize and crop from the folder's image processor; bounds (0, 1)",
    "package.module:attr": "an nn.Module or a factory returning one (optional --weights; bounds (0, 1), no "
                           "normalization unless given), or a robust.Classifier, kept with its own settings",
    "FILE.pt": "a TorchScript file (torch.jit.save); bounds (0, 1), no normalization unless given",
}
"""What each loader takes, for ``robust list models``; nothing is ever downloaded."""


def list_models() -> dict[str, str]:
    """Zoo models with their description and recorded clean accuracy, then the loaders."""
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
    return out | LOADERS
