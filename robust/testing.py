"""Robustness in test suites: ``assert_robust`` and a conformance kit for attack plugins.

``assert_robust`` fails a test when a model is less robust than a threshold.
``check_attack`` runs the harness's invariants on any attack object, in the spirit of
scikit-learn's ``check_estimator``, so a third-party plugin can be checked like ours.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from robust.attack import Attack
from robust.data import ArrayDataset, load_dataset
from robust.data import Data, collect
from robust.evaluation import evaluate
from robust.model import Classifier
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
    result = evaluate(model, (x, y), [run], eps=eps, norm=norm, batch_size=batch_size, seed=seed,
                      command=f"assert_robust({CURRENT_TEST[0] or 'python'})")
    result.dataset = name
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


# Conformance checks -----------------------------------------------------------------------

@dataclass
class Case:
    """The model and batch a conformance check runs on."""

    model: Classifier
    x: torch.Tensor
    y: torch.Tensor
    eps: float


def conformance_case(attack: Attack, n: int = 24) -> Case:
    """A small MLP trained on scikit-learn's 8x8 digits (seeded, about a second on a CPU)."""
    model = small_digits_model()
    test = load_dataset("digits")
    pick = torch.randperm(len(test), generator=torch.Generator().manual_seed(0))[:n]
    return Case(model, test.x[pick], test.y[pick], 0.1 if attack.norm == "linf" else 1.0)


@functools.lru_cache(maxsize=1)
def small_digits_model() -> Classifier:
    """A seeded MLP trained on scikit-learn's 8x8 digits, about 92% accurate on its test split; built once per process."""
    train: ArrayDataset = load_dataset("digits", split="train")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(100):
        opt.zero_grad()
        nn.functional.cross_entropy(net(train.x), train.y).backward()
        opt.step()
    return Classifier(net.eval(), device="cpu")


class _ModeSpy(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.seen: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(self.training)
        return self.inner(x)


def check_eps_zero(attack: Attack, case: Case) -> None:
    """eps=0 returns the input unchanged; success only where the model already errs."""
    res = attack(case.model, case.x, case.y, eps=0.0)
    assert torch.equal(res.x_adv.cpu(), case.x), "eps=0 changed the input"
    assert torch.equal(res.success.cpu(), case.model.predict(case.x).cpu() != case.y), "eps=0 success is wrong"


def check_eps_ball_and_bounds(attack: Attack, case: Case) -> None:
    """Outputs lie inside the eps ball and the bounds; reported norms match the outputs."""
    res = attack(case.model, case.x, case.y, eps=case.eps)
    delta = (res.x_adv.cpu() - case.x).flatten(1)
    size = delta.abs().amax(1) if attack.norm == "linf" else delta.norm(dim=1)
    assert float(size.max()) <= case.eps * (1 + 1e-5), f"perturbation {float(size.max()):.6g} exceeds eps {case.eps}"
    lo, hi = case.model.bounds
    assert float(res.x_adv.min()) >= lo and float(res.x_adv.max()) <= hi, "output outside the bounds"
    assert torch.allclose(res.l2.cpu(), delta.norm(dim=1), atol=1e-5), "reported l2 differs from the output's"
    assert torch.allclose(res.linf.cpu(), delta.abs().amax(1), atol=1e-6), "reported linf differs from the output's"


def check_no_mutation_and_mode(attack: Attack, case: Case) -> None:
    """Inputs are never modified; the model runs in eval mode and its mode is restored."""
    x, y = case.x.clone(), case.y.clone()
    spy = _ModeSpy(case.model.module)
    model = Classifier(spy, bounds=case.model.bounds, device=case.model.device)
    spy.train()
    try:
        attack(model, x, y, eps=case.eps)
        assert torch.equal(x, case.x) and torch.equal(y, case.y), "the attack modified its inputs"
        assert spy.training and spy.inner.training, "the model's train mode was not restored"
        assert spy.seen and not any(spy.seen), "the attack ran the model in train mode"
    finally:
        spy.eval()


def check_determinism(attack: Attack, case: Case) -> None:
    """The same seed gives the same result."""
    first = attack(case.model, case.x, case.y, eps=case.eps, seed=3)
    second = attack(case.model, case.x, case.y, eps=case.eps, seed=3)
    assert torch.equal(first.x_adv, second.x_adv), "same seed, different adversarial examples"


def check_success_rejudged(attack: Attack, case: Case) -> None:
    """``success`` agrees with a fresh prediction on the returned examples."""
    res = attack(case.model, case.x, case.y, eps=case.eps)
    fresh = case.model.predict(res.x_adv).cpu() != case.y
    assert torch.equal(res.success.cpu(), fresh), "success disagrees with the model's prediction"


def check_batch_independence(attack: Attack, case: Case) -> None:
    """Attacking a half batch alone finds about as many adversarials there as the full batch did.

    Random draws depend on the batch, so the check allows a quarter of the half batch (at
    least 2 samples) of difference; an attack that mixes samples misses it by far more.
    """
    half = len(case.x) // 2
    whole = attack(case.model, case.x, case.y, eps=case.eps).success[:half].sum()
    alone = attack(case.model, case.x[:half], case.y[:half], eps=case.eps).success.sum()
    assert abs(int(whole) - int(alone)) <= max(2, half // 4), f"{int(whole)} vs {int(alone)} successes"


CHECKS: list[Callable[[Attack, Case], None]] = [
    check_eps_zero, check_eps_ball_and_bounds, check_no_mutation_and_mode, check_determinism,
    check_success_rejudged, check_batch_independence,
]


def attack_checks(attack: Attack) -> Iterator[tuple[str, Callable[[], None]]]:
    """(name, callable) for every conformance check on ``attack``, for parametrized tests."""
    case = conformance_case(attack)
    for check in CHECKS:
        yield check.__name__, functools.partial(check, attack, case)


def check_attack(attack: Attack) -> None:
    """Run every conformance check on ``attack``; raise AssertionError listing each failure."""
    failures = []
    for name, run in attack_checks(attack):
        try:
            run()
        except AssertionError as exc:
            failures.append(f"{name}: {exc}")
    if failures:
        raise AssertionError(f"attack {attack!r} failed {len(failures)} check(s):\n  " + "\n  ".join(failures))
