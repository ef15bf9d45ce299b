"""A conformance kit for attack plugins, in the spirit of scikit-learn's ``check_estimator``.

``check_attack`` runs the harness's invariants on any attack object, so a third-party
plugin can be checked like ours: eps 0, the eps ball and the bounds, no mutation, modes
restored, determinism, success re-judged, batch independence, typed hyperparameters, and
never a call of the model on an empty batch (on a model whose forward raises on one, as the
most common CIFAR ResNet code does).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from robust.attack import Attack
from robust.data import ArrayDataset, load_digits
from robust.errors import RobustError
from robust.model import Classifier
from robust.ops import largest, lp_norms
from robust.params import TENSOR, Param


class EmptyBatchError(AssertionError):
    """The model was called on a batch of zero samples."""


class RefusesEmptyBatch(nn.Module):
    """Flattens as ``x.view(x.size(0), -1)``, the way the most common CIFAR ResNet code does,
    which cannot reshape an empty batch; this raises :class:`EmptyBatchError` there instead."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] == 0:
            raise EmptyBatchError(f"the model was called on an empty batch of shape {tuple(x.shape)}")
        return x.view(x.size(0), -1)


@dataclass
class Case:
    """The model and batch a conformance check runs on."""

    model: Classifier
    x: torch.Tensor
    y: torch.Tensor
    eps: float


def conformance_case(attack: Attack, n: int = 24) -> Case:
    """A small MLP trained on scikit-learn's 8x8 digits (seeded, about a second on a CPU), whose
    forward raises on an empty batch."""
    model = small_digits_model()
    test = load_digits("test")
    pick = torch.randperm(len(test), generator=torch.Generator().manual_seed(0))[:n]
    return Case(model, test.x[pick], test.y[pick], {"linf": 0.1, "l0": 4.0}.get(attack.norm, 1.0))


@functools.lru_cache(maxsize=1)
def small_digits_model() -> Classifier:
    """A seeded MLP trained on scikit-learn's 8x8 digits, about 92% accurate on its test split; built once per process.

    It flattens with :class:`RefusesEmptyBatch`, so everything run on it proves it never calls
    the model on zero samples.
    """
    train: ArrayDataset = load_digits("train")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = nn.Sequential(RefusesEmptyBatch(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
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
    size = lp_norms(delta, attack.norm)
    assert float(size.max()) <= case.eps * (1 + 1e-5), f"perturbation {float(size.max()):.6g} exceeds eps {case.eps}"
    lo, hi = case.model.bounds
    assert float(res.x_adv.min()) >= lo and float(res.x_adv.max()) <= hi, "output outside the bounds"
    assert torch.allclose(res.l2.cpu(), delta.norm(dim=1), atol=1e-5), "reported l2 differs from the output's"
    assert torch.allclose(res.linf.cpu(), delta.abs().amax(1), atol=1e-6), "reported linf differs from the output's"
    assert torch.allclose(res.l1.cpu(), delta.abs().sum(1), rtol=1e-5, atol=1e-5), "reported l1 differs from the output's"
    assert torch.equal(res.l0.cpu(), (delta != 0).sum(1).to(res.l0.dtype)), "reported l0 differs from the output's"


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


def check_no_empty_batches(attack: Attack, case: Case) -> None:
    """The model is never called on zero samples, even when every point is fooled at once.

    Runs the attack with labels that every point already violates (each point is done before
    the first step) and at a budget as large as the box (every point falls early); the
    case's model raises :class:`EmptyBatchError` on an empty batch.
    """
    pred = case.model.predict(case.x).cpu()
    classes = int(case.model.num_classes or 2)
    attack(case.model, case.x, (pred + 1) % classes, eps=case.eps)
    lo, hi = case.model.bounds
    box = largest(attack.norm, hi - lo, case.x[0].numel())
    attack(case.model, case.x, case.y, eps=box)


def _invalid(param: Param) -> list[object]:
    """Values that ``param`` must refuse."""
    if param.type is None:
        return []
    if param.type == TENSOR:
        return [3]
    wrong: list[object] = ["not-a-value"] if param.type is not str else []
    if param.choices is not None:
        wrong.append("not-a-choice")
    if param.type in (int, float):
        wrong.append(True)
        if param.low is not None:
            wrong.append(param.low - 1)
        if param.high is not None:
            wrong.append(param.high + 1)
    return wrong


def check_hyperparameters(attack: Attack, case: Case) -> None:
    """The defaults validate; every typed parameter refuses wrong values with a message naming it."""
    attack.check_hyperparameters()
    for param in type(attack).all_parameters():
        for value in _invalid(param):
            try:
                attack.with_params(**{param.name: value}).check_hyperparameters()
            except RobustError as exc:
                assert param.name in str(exc), f"refusing {param.name}={value!r}, the message does not name it: {exc}"
            else:
                raise AssertionError(f"{param.name}={value!r} was accepted; it takes {param.describe()}")


CHECKS: list[Callable[[Attack, Case], None]] = [
    check_eps_zero, check_eps_ball_and_bounds, check_no_mutation_and_mode, check_determinism,
    check_success_rejudged, check_batch_independence, check_no_empty_batches, check_hyperparameters,
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
