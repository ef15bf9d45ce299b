"""robust: adversarial-robustness evaluation for PyTorch classifiers.

Quick start:
    >>> import robust
    >>> model = robust.load_model("resnet")
    >>> data = robust.load_dataset("mnist", n=100)
    >>> result = robust.evaluate(model, (data.x, data.y), ["fgsm", "pgd"], eps=0.3)
    >>> result.robust_accuracy
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "Classifier": "robust.model",
    "Attack": "robust.attack",
    "AttackResult": "robust.attack",
    "RobustError": "robust.errors",
    "create_attack": "robust.registry",
    "list_attacks": "robust.registry",
    "list_defenses": "robust.registry",
    "create_defense": "robust.registry",
    "Defense": "robust.defense",
    "evaluate": "robust.evaluation",
    "Evaluation": "robust.result",
    "load_result": "robust.result",
    "load_dataset": "robust.data",
    "load_model": "robust.loaders",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    """Import the public names lazily, so ``import robust`` (and the CLI's help) stays fast."""
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'robust' has no attribute {name!r}")
