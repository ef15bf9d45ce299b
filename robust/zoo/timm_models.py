"""timm models: ``timm:NAME[:key=value,...]``, built with random weights, then loaded from a local file.

``timm.create_model`` is always called with ``pretrained=False``: nothing is downloaded. The
weights come from ``--weights``: a state dict, or a checkpoint written by timm's ``train.py``
(its EMA weights, ``state_dict_ema``, when present, as timm's own ``load_checkpoint`` does;
else ``state_dict``).

What the model expects is read from its ``pretrained_cfg`` (for ``NAME.tag``, that tag's):
``mean`` and ``std``, and, from ``input_size`` and ``crop_pct``, resize to
``floor(size / crop_pct)`` then center crop ``size``. A model built for another image size
(``img_size=32``, as for CIFAR-sized ViTs) gets ``resize=size, crop=size`` instead: images of
that size pass unchanged and larger ones are scaled down whole (timm's ``resolve_data_config``
would still report the pretrained 224).
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robust.errors import RobustError, suggest
from robust.model import Preprocessing
from robust.params import guess, parse_spec
from robust.zoo.normalization import InputSettings
from robust.zoo.state import load_state, read_state_dict, without_prefixes

CHECKPOINT_KEYS = ("state_dict_ema", "model_ema", "state_dict", "model")


def load_timm(spec: str, weights: str | None) -> tuple[nn.Module, InputSettings]:
    """The model of ``spec`` (``NAME`` or ``NAME:key=value,...``, after ``timm:``) in eval mode, and its settings.

    Args:
        spec: a timm model name, optionally with keyword arguments for ``timm.create_model``
            (values read as int, float, bool or text), e.g. ``vit_tiny_patch16_224:img_size=32``.
        weights: a state dict or timm training checkpoint; ``num_classes`` is read from its
            classifier unless given in ``spec``. Without weights the model keeps its random ones.
    """
    timm = _import_timm()
    arch, kwargs = parse_timm_spec(spec)
    _check_known(timm, arch)
    state = read_state_dict(Path(weights), CHECKPOINT_KEYS) if weights is not None else None
    if state is not None and "num_classes" not in kwargs:
        kwargs.update(_classes(timm, arch, state))
    model = _create(timm, arch, kwargs)
    if state is not None:
        load_state(model, Path(str(weights)), state)
    recompute_attention_biases(model)
    return model.eval(), settings(model, kwargs)


def parse_timm_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``NAME:img_size=32,drop_rate=0.1`` -> ("NAME", {"img_size": 32, "drop_rate": 0.1})."""
    if not spec.strip():
        raise RobustError("timm: needs a model name, as in timm:resnet50 or timm:vit_tiny_patch16_224:img_size=32")
    name, texts = parse_spec(spec)
    kwargs = {key: guess(text) for key, text in texts.items()}
    if kwargs.get("pretrained") or "pretrained_cfg_overlay" in kwargs:
        raise RobustError(f"timm:{name}: pretrained weights are never downloaded; save them to a local file "
                          "and give it with --weights")
    kwargs.pop("pretrained", None)
    return name, kwargs


def _import_timm() -> Any:
    try:
        import timm
    except ImportError as exc:
        raise RobustError("timm is not installed: pip install 'robust[timm]'") from exc
    return timm


def _check_known(timm: Any, arch: str) -> None:
    if not timm.is_model(arch):
        raise RobustError(f"timm has no model {arch!r}{suggest(arch, timm.list_models())}; "
                          "timm.list_models('*pattern*') lists its names")


def _classes(timm: Any, arch: str, state: dict[str, torch.Tensor]) -> dict[str, int]:
    """``num_classes`` from the weights of the classifier that the architecture's config names."""
    cfg = timm.models.get_pretrained_cfg(arch)
    head = getattr(cfg, "classifier", None) if cfg is not None else None
    head = head[0] if isinstance(head, (tuple, list)) and head else head
    weight = without_prefixes(state).get(f"{head}.weight") if isinstance(head, str) else None
    return {"num_classes": int(weight.shape[0])} if torch.is_tensor(weight) and weight.ndim >= 2 else {}


def _create(timm: Any, arch: str, kwargs: dict[str, Any]) -> nn.Module:
    try:
        model: nn.Module = timm.create_model(arch, pretrained=False, **kwargs)
    except Exception as exc:
        given = ", ".join(f"{k}={v!r}" for k, v in kwargs.items()) or "no arguments"
        raise RobustError(f"timm could not build {arch!r} with {given}: {str(exc).splitlines()[0]}") from exc
    return model


def settings(model: nn.Module, kwargs: dict[str, Any]) -> InputSettings:
    """Mean, std and preprocessing from the model's ``pretrained_cfg`` and the image size it was built for."""
    cfg: dict[str, Any] = dict(getattr(model, "pretrained_cfg", None) or {})
    mean, std = cfg.get("mean"), cfg.get("std")
    built = _side(kwargs.get("img_size"))
    size = _side(cfg.get("input_size"))
    if built is not None and built != size:
        preprocessing: Preprocessing | None = Preprocessing(resize=built, crop=built)
    elif size is not None:
        preprocessing = Preprocessing(resize=math.floor(size / float(cfg.get("crop_pct") or 1.0)), crop=size)
    else:
        preprocessing = None
    stats = (tuple(float(v) for v in mean), tuple(float(v) for v in std)) if mean and std else (None, None)
    return InputSettings(mean=stats[0], std=stats[1], preprocessing=preprocessing)


def _side(size: Any) -> int | None:
    """The (smaller) side of an image size: an int, (H, W) or (C, H, W)."""
    if isinstance(size, int) and not isinstance(size, bool):
        return size
    if isinstance(size, (tuple, list)) and size and all(isinstance(v, int) for v in size):
        return min(size[-2:])
    return None


def recompute_attention_biases(model: nn.Module) -> None:
    """Make timm's attention-bias caches (LeViT, EfficientFormer, EfficientFormerV2, EfficientViT-MSRA,
    TinyViT) recompute the biases on every call.

    In eval mode these models keep the indexed biases from their first forward pass, autograd
    graph included; the second backward pass through it (an attack's second step) then fails
    with "Trying to backward through the graph a second time". Recomputing is one indexing op.
    """
    for module in model.modules():
        if hasattr(module, "attention_bias_cache") and hasattr(module, "attention_bias_idxs"):
            setattr(module, "attention_bias_cache", {})
            setattr(module, "get_attention_biases", functools.partial(_attention_biases, module))


def _attention_biases(module: nn.Module, device: torch.device | None = None) -> torch.Tensor:
    biases: torch.Tensor = module.attention_biases[:, module.attention_bias_idxs]  # type: ignore[index]
    return biases
