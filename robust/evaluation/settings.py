"""What an evaluation resolves before any attack runs: budgets, batch size, attacks, model.

Every check here raises :class:`~robust.errors.RobustError` naming the problem, so bad
settings fail before the first forward pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from robust.attack import Attack
from robust.errors import RobustError
from robust.model import Classifier, resolve_device
from robust.params import ALL_NORMS
from robust.registry import create_attack

AttackSpec = str | Attack


def eps_levels(eps: float | Sequence[float]) -> list[float]:
    """One budget or several, validated, sorted and without duplicates."""
    values: list[Any] = list(eps) if isinstance(eps, (list, tuple)) else [eps]
    if not values:
        raise RobustError("give at least one eps")
    for value in values:
        check_eps(value)
    return sorted({float(v) for v in values})


def check_eps(eps: Any) -> None:
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 <= eps < float("inf"):
        raise RobustError(f"eps must be a finite number >= 0, got {eps!r}")


def check_norm(norm: Any) -> None:
    if norm not in ALL_NORMS:
        raise RobustError(f"norm must be one of {', '.join(ALL_NORMS)}, got {norm!r}")


def batch_size_for(batch_size: int | str, model: Classifier, n: int) -> int:
    """``"auto"``: the whole set at once on CUDA (halved on out-of-memory errors), 256 on the CPU."""
    if batch_size == "auto":
        return max(1, min(n, 16384)) if model.device.type == "cuda" else 256
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise RobustError(f"batch size must be a positive integer or 'auto', got {batch_size!r}")
    return batch_size


def resolve_attacks(attacks: Sequence[AttackSpec] | AttackSpec, norm: str) -> list[Attack]:
    """Attack objects for this evaluation's norm; names and specs (``pgd:steps=10``) are created with it.

    A preset (``standard``) stands for its components, which run as separate attacks of the cascade.
    """
    listed = [attacks] if isinstance(attacks, (str, Attack)) else list(attacks)
    return [part for attack in listed for part in _resolve(attack, norm).components()]


def _resolve(attack: AttackSpec, norm: str) -> Attack:
    if isinstance(attack, str):
        attack = create_attack(attack)
    if not isinstance(attack, Attack):
        raise RobustError(f"attacks must be names or Attack objects, got {type(attack).__name__}")
    given = attack.given.get("norm")
    if given is not None and given != norm:
        raise RobustError(f"attack {attack.name!r} is configured for norm {given!r} but the evaluation uses {norm!r}")
    return attack.with_params(norm=norm) if "norm" in attack.defaults else attack


def as_model(model: nn.Module | str, device: str | torch.device | None) -> Classifier:
    """A Classifier for ``model``: kept as it is, wrapped (bounds (0, 1)), or loaded by name."""
    if isinstance(model, str):
        from robust.zoo.loaders import load_model

        return load_model(model, device=device)
    if isinstance(model, Classifier):
        return model
    if isinstance(model, nn.Module):
        return Classifier(model, device=resolve_device(device))
    raise RobustError(f"model must be a torch.nn.Module or a model name, got {type(model).__name__}")


def clean_predictions(model: Classifier, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> torch.Tensor:
    """The model's predictions on the clean inputs (on the CPU), after checking inputs and labels fit it."""
    model.check_inputs(x)
    try:
        pred = model.predict(x, min(batch_size, 4096)).cpu()
    except (RuntimeError, ValueError, TypeError) as exc:
        if isinstance(exc, RobustError):
            raise
        raise RobustError(f"the model failed on inputs of shape {tuple(x.shape[1:])}: {str(exc).splitlines()[0]}") from exc
    if int(y.min()) < 0 or int(y.max()) >= int(model.num_classes or 0):
        raise RobustError(f"labels lie in [{int(y.min())}, {int(y.max())}], but the model has {model.num_classes} classes")
    return pred
