"""``assert_robust``: fail a test, with a readable message, when a model is less robust than a threshold.

Every assertion made in the process is recorded, so the pytest plugin can report them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from robust.attack import Attack
from robust.data import ArrayDataset, Data, collect
from robust.evaluation import evaluate
from robust.registry import create_attack
from robust.result import Evaluation


@dataclass
class Record:
    """One robustness assertion made in this process (the pytest plugin reports them)."""

    test: str
    evaluation: Evaluation
    min_accuracy: float
    passed: bool


RECORDS: list[Record] = []
CURRENT_TEST: list[str] = [""]
REPORT_PATH: list[str | None] = [None]


def assert_robust(
    model: nn.Module | str,
    data: Data | str,
    *,
    attack: str | Attack = "pgd",
    eps: float,
    min_accuracy: float,
    n: int | None = None,
    norm: str = "linf",
    batch_size: int = 256,
    seed: int = 0,
    **attack_params: Any,
) -> Evaluation:
    """Fail with a readable message unless robust accuracy reaches ``min_accuracy``.

    Args:
        model: a Classifier, an ``nn.Module`` (bounds (0, 1)) or a zoo name / model spec.
        data: ``(x, y)`` tensors, a Dataset, a DataLoader, or a dataset name.
        attack: attack name or object; ``attack_params`` configure a named one.
        eps: budget in input space, in ``norm``.
        min_accuracy: the least robust accuracy, in [0, 1], that passes.
        n: use only the first ``n`` samples.

    Returns:
        The :class:`~robust.result.Evaluation`, when the assertion holds.

    Example:
        >>> robust.testing.assert_robust("cnn", "mnist", eps=0.1, min_accuracy=0.0, n=50, steps=5)
    """
    x, y, name = collect(data)
    x, y = (x[:n], y[:n]) if n is not None else (x, y)
    run = create_attack(attack, **attack_params) if isinstance(attack, str) else attack
    result = evaluate(model, ArrayDataset(x, y, name), [run], eps=eps, norm=norm, batch_size=batch_size, seed=seed,
                      command=f"assert_robust({CURRENT_TEST[0] or 'python'})")
    passed = result.robust_accuracy >= min_accuracy
    RECORDS.append(Record(CURRENT_TEST[0], result, min_accuracy, passed))
    if not passed:
        short = round((min_accuracy - result.robust_accuracy) * result.n + 0.4999)
        where = f"; report: {REPORT_PATH[0]}" if REPORT_PATH[0] else ""
        raise AssertionError(
            f"{result.model} is not robust enough under {run.name} at {norm} eps={eps:g}: robust accuracy "
            f"{result.robust_accuracy:.2%} < required {min_accuracy:.2%} (clean accuracy {result.clean_accuracy:.2%}, "
            f"n={result.n}); {short} more sample(s) would have had to survive{where}"
        )
    return result
