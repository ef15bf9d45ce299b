"""Harness invariants, checked on every registered attack (parametrized over the registry)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

import robust
from robust.registry import list_attacks

# Cheap settings so that every attack runs in about a second on the 8x8 digits model.
FAST: dict[str, dict[str, Any]] = {
    "pgd": {"steps": 5},
    "deepfool": {"steps": 10},
    "cw": {"steps": 20, "binary_search_steps": 2},
    "boundary": {"max_queries": 200},
}
EPS = {"linf": 0.1, "l2": 1.0}


def make(name: str) -> robust.Attack:
    return robust.create_attack(name, **FAST.get(name, {}))


class ModeSpy(nn.Module):
    """Records the training flag seen by every forward pass."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.seen: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(self.training)
        return self.inner(x)


@pytest.fixture
def batch(digits: Any) -> tuple[torch.Tensor, torch.Tensor]:
    return digits.x[:32].clone(), digits.y[:32].clone()


@pytest.mark.parametrize("name", list_attacks())
def test_eps_zero_returns_input(name: str, digits_model: robust.Classifier, batch: Any) -> None:
    x, y = batch
    attack = make(name)
    res = attack(digits_model, x, y, eps=0.0)
    assert torch.equal(res.x_adv.cpu(), x)
    assert torch.equal(res.success.cpu(), digits_model.predict(x).cpu() != y)


@pytest.mark.parametrize("name", list_attacks())
def test_output_inside_eps_ball_and_bounds(name: str, digits_model: robust.Classifier, batch: Any) -> None:
    x, y = batch
    attack = make(name)
    eps = EPS[attack.norm]
    res = attack(digits_model, x, y, eps=eps)
    delta = (res.x_adv.cpu() - x).flatten(1)
    size = delta.abs().amax(1) if attack.norm == "linf" else delta.norm(dim=1)
    assert float(size.max()) <= eps * (1 + 1e-5)
    assert float(res.x_adv.min()) >= 0.0 and float(res.x_adv.max()) <= 1.0
    assert torch.allclose(res.l2.cpu(), delta.norm(dim=1), atol=1e-5)
    assert torch.allclose(res.linf.cpu(), delta.abs().amax(1), atol=1e-6)


@pytest.mark.parametrize("name", list_attacks())
def test_inputs_not_mutated_and_mode_restored(name: str, digits_model: robust.Classifier, batch: Any) -> None:
    x, y = batch
    x_copy, y_copy = x.clone(), y.clone()
    spy = ModeSpy(digits_model.module)
    model = robust.Classifier(spy, device=digits_model.device)
    spy.train()
    make(name)(model, x, y, eps=EPS[make(name).norm])
    assert torch.equal(x, x_copy) and torch.equal(y, y_copy)
    assert spy.training and spy.inner.training, "the model's train mode was not restored"
    assert spy.seen and not any(spy.seen), "the attack ran the model in train mode"
    spy.eval()


@pytest.mark.parametrize("name", list_attacks())
def test_same_seed_same_result(name: str, digits_model: robust.Classifier, batch: Any) -> None:
    x, y = batch
    attack = make(name)
    eps = EPS[attack.norm]
    first = attack(digits_model, x, y, eps=eps, seed=3)
    second = attack(digits_model, x, y, eps=eps, seed=3)
    assert torch.equal(first.x_adv, second.x_adv)
    assert torch.equal(first.success, second.success)


@pytest.mark.parametrize("name", list_attacks())
def test_success_agrees_with_fresh_prediction(name: str, digits_model: robust.Classifier, batch: Any) -> None:
    x, y = batch
    attack = make(name)
    res = attack(digits_model, x, y, eps=EPS[attack.norm])
    assert torch.equal(res.success.cpu(), digits_model.predict(res.x_adv).cpu() != y)
    assert res.forward_passes >= 1
    assert res.seconds >= 0


@pytest.mark.parametrize("name", list_attacks())
def test_rejects_unknown_parameter(name: str, digits_model: robust.Classifier, batch: Any) -> None:
    x, y = batch
    attack = robust.create_attack(name, not_a_parameter=1)
    with pytest.raises(robust.RobustError, match="unknown parameter 'not_a_parameter'"):
        attack(digits_model, x, y, eps=0.1)


@pytest.mark.parametrize("name", list_attacks())
def test_rejects_inputs_outside_bounds_and_nan(name: str, digits_model: robust.Classifier, batch: Any) -> None:
    x, y = batch
    attack = make(name)
    with pytest.raises(robust.RobustError, match="outside the model's bounds"):
        attack(digits_model, x * 3 - 1, y, eps=0.1)
    bad = x.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(robust.RobustError, match="NaN"):
        attack(digits_model, bad, y, eps=0.1)
    with pytest.raises(robust.RobustError, match="labels must lie"):
        attack(digits_model, x, y + 10, eps=0.1)
    with pytest.raises(robust.RobustError, match="eps must be"):
        attack(digits_model, x, y, eps=-0.1)
