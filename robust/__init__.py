"""robust: adversarial-robustness evaluation for PyTorch classifiers.

Quick start:
    >>> import robust
    >>> model = robust.load_model("resnet")
    >>> data = robust.load_dataset("mnist", n=100)
    >>> result = robust.evaluate(model, (data.x, data.y), ["fgsm", "pgd"], eps=0.3)
    >>> result.robust_accuracy
    >>> robust.write_report(result, "report.html")

The package's layers, each importing only those before it: the contracts (``errors``,
``params``, ``model``, ``losses``, ``attack``, ``gradient``, ``defense``, ``registry``,
``result``); ``data`` and ``zoo`` (datasets and models); ``evaluation`` (the cascade, the
batch runner, the checks); ``comparison`` (other frameworks); ``report`` (HTML from the
result JSON); ``training``; ``testing``; ``runs`` (what a command runs, from options to
files); ``cli``. Attacks and defenses are plugins (``robust.attacks``, ``robust.defenses``),
found through entry points and never imported by name.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {  # public name: (module, attribute)
    "Classifier": ("robust.model", "Classifier"),
    "Attack": ("robust.attack", "Attack"),
    "AttackResult": ("robust.attack", "AttackResult"),
    "GradientAttack": ("robust.gradient", "GradientAttack"),
    "Param": ("robust.params", "Param"),
    "RobustError": ("robust.errors", "RobustError"),
    "create_attack": ("robust.registry", "create_attack"),
    "list_attacks": ("robust.registry", "list_attacks"),
    "list_defenses": ("robust.registry", "list_defenses"),
    "create_defense": ("robust.registry", "create_defense"),
    "Defense": ("robust.defense", "Defense"),
    "PreprocessingDefense": ("robust.defense", "PreprocessingDefense"),
    "TrainingDefense": ("robust.defense", "TrainingDefense"),
    "evaluate": ("robust.evaluation", "evaluate"),
    "compare": ("robust.comparison", "compare"),
    "Evaluation": ("robust.result", "Evaluation"),
    "load_result": ("robust.result", "load_result"),
    "write_report": ("robust.report", "write_html"),
    "load_dataset": ("robust.data", "load_dataset"),
    "load_model": ("robust.zoo.loaders", "load_model"),
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    """Import the public names lazily, so ``import robust`` (and the CLI's help) stays fast."""
    if name in _LAZY:
        module, attribute = _LAZY[name]
        value = getattr(import_module(module), attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'robust' has no attribute {name!r}")
