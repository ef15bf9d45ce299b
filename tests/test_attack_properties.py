"""Harness invariants, checked on every registered attack through the conformance kit."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import robust
from robust.registry import list_attacks
from robust.testing import CHECKS, Case, check_attack, conformance_case

# Cheap settings so that every attack runs in about a second on the 8x8 digits model.
FAST: dict[str, dict[str, Any]] = {
    "pgd": {"steps": 5},
    "deepfool": {"steps": 10},
    "cw": {"steps": 20, "binary_search_steps": 2},
    "boundary": {"max_queries": 200},
    "pgd:restarts=3": {"steps": 5},
    "apgd": {"steps": 10},
    "apgd-t": {"steps": 10, "targets": 3},
    "fab": {"steps": 10},
    "fab-t": {"steps": 10, "targets": 3},
    "square": {"queries": 100},
    "standard": {"steps": 5, "targets": 2, "queries": 50},
    "apgd:norm=l2": {"steps": 10},
    "square:norm=l2": {"queries": 100},
    "fmn:norm=l1": {"steps": 10},
    "fmn:norm=l0": {"steps": 10},
}

# Every registered attack, and further configurations of them (FAST keys that are specs).
CONFIGURATIONS: list[str] = [*list_attacks(), *(spec for spec in FAST if ":" in spec)]


def make(name: str) -> robust.Attack:
    return robust.create_attack(name, **FAST.get(name, {}))


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", CONFIGURATIONS)
def test_conformance(name: str, check: Any) -> None:
    attack = make(name)
    check(attack, conformance_case(attack))


def test_check_attack_catches_a_broken_attack() -> None:
    class Unseeded(robust.Attack):
        """Draws its noise from the global RNG instead of the generator it is given."""

        name = "unseeded"
        defaults = {"norm": "linf"}

        def run(self, model: Any, x: Any, y: Any, *, eps: Any, targeted: bool, generator: Any) -> Any:
            return x + (torch.rand_like(x) * 2 - 1) * eps

    with pytest.raises(AssertionError, match="check_determinism") as info:
        check_attack(Unseeded())
    assert "check_eps_zero" not in str(info.value)  # the harness projects, so eps=0 still holds


def test_harness_protects_against_sloppy_plugins() -> None:
    class Sloppy(robust.Attack):
        """Ignores eps, writes into its inputs and leaves the model in train mode."""

        name = "sloppy"
        defaults = {"norm": "linf"}

        def run(self, model: Any, x: Any, y: Any, *, eps: Any, targeted: bool, generator: Any) -> Any:
            model.module.train()
            y.zero_()
            return x.mul_(0.5)

    check_attack(Sloppy())  # the harness copies inputs, restores modes and projects


@pytest.mark.parametrize("name", list_attacks())
def test_rejects_unknown_parameter(name: str) -> None:
    case: Case = conformance_case(make(name))
    attack = robust.create_attack(name, not_a_parameter=1)
    with pytest.raises(robust.RobustError, match="unknown parameter 'not_a_parameter'"):
        attack(case.model, case.x, case.y, eps=0.1)


@pytest.mark.parametrize("name", list_attacks())
def test_rejects_inputs_outside_bounds_and_nan(name: str) -> None:
    attack = make(name)
    case = conformance_case(attack)
    x, y = case.x, case.y
    with pytest.raises(robust.RobustError, match="outside the model's bounds"):
        attack(case.model, x * 3 - 1, y, eps=0.1)
    bad = x.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(robust.RobustError, match="NaN"):
        attack(case.model, bad, y, eps=0.1)
    with pytest.raises(robust.RobustError, match="labels must lie"):
        attack(case.model, x, y + 10, eps=0.1)
    with pytest.raises(robust.RobustError, match="eps must be"):
        attack(case.model, x, y, eps=-0.1)
