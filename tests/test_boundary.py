"""Boundary attack: near-optimal on the linear oracle, beats Foolbox at equal queries, seeded, in bounds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch import nn

import robust

FOOLBOX_BUDGET = 1000  # queries per sample for the comparison with Foolbox


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """The walk is many small tensor ops; on a busy 2-core CPU, thread hand-offs cost 30x the work."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class CountingModule(nn.Module):
    """Counts batched forward calls: each one is a query for every sample in the batch."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.inner(x)


def test_linear_oracle_near_optimal(linear_oracle: Any) -> None:
    res = robust.create_attack("boundary")(linear_oracle.model, linear_oracle.x, linear_oracle.y, seed=0)
    ratio = linear_oracle.ratios(res, "l2")
    assert float(ratio.median()) <= 1.5, float(ratio.median())  # Foolbox: 1.56 after 5000 steps
    assert res.queries is not None and res.queries.dtype == torch.long and res.queries.shape == (len(ratio),)
    assert int(res.queries.max()) <= 5000


def test_beats_foolbox_at_equal_queries(zoo_cnn: robust.Classifier, mnist500: Any) -> None:
    foolbox = pytest.importorskip("foolbox")
    x, y = mnist500.x[:32].to(zoo_cnn.device), mnist500.y[:32].to(zoo_cnn.device)
    ok = zoo_cnn.predict(x) == y
    x, y = x[ok][:16], y[ok][:16]
    ours = robust.create_attack("boundary", max_queries=FOOLBOX_BUDGET)(zoo_cnn, x, y, seed=0)
    assert int(ours.queries.max()) <= FOOLBOX_BUDGET

    # Foolbox queries the whole batch at every call, so per-sample queries = forward calls. Its
    # budget: the LinearSearchBlendedUniformNoiseAttack(steps=50) start (measured below with the same
    # seed), one check of that start, then per step one call on the full candidates plus one on the
    # spherical candidates every update_stats_every_k = 10 steps (1.1 calls a step, not 2), and one
    # final check in __call__. We give it the most steps that fit in the same budget.
    counted = CountingModule(zoo_cnn.module.eval()).eval()
    fmodel = foolbox.PyTorchModel(counted, bounds=(0, 1), device=zoo_cnn.device)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        foolbox.attacks.LinearSearchBlendedUniformNoiseAttack(steps=50).run(fmodel, x, y)
        init, steps = counted.calls, 0
        while init + 1 + (steps + 1) + (steps + 1) // 10 + 1 <= FOOLBOX_BUDGET:
            steps += 1
        counted.calls = 0
        torch.manual_seed(0)
        adv, _, _ = foolbox.attacks.BoundaryAttack(steps=steps)(fmodel, x, y, epsilons=None)
    assert FOOLBOX_BUDGET - 2 <= counted.calls <= FOOLBOX_BUDGET, (counted.calls, init, steps)
    fb_success = zoo_cnn.predict(adv) != y  # judged by the model, not by Foolbox
    fb_l2 = (adv - x).flatten(1).norm(dim=1)
    assert float(ours.success.float().mean()) >= float(fb_success.float().mean())
    assert float(ours.l2.median()) <= float(fb_l2.median()), (float(ours.l2.median()), float(fb_l2.median()))


@pytest.mark.cuda
def test_seeded_and_inside_bounds(digits_model: robust.Classifier, digits: Any) -> None:
    x, y = digits.x[:32].to(digits_model.device), digits.y[:32].to(digits_model.device)
    attack = robust.create_attack("boundary", max_queries=300)
    first, second, other = (attack(digits_model, x, y, seed=s) for s in (0, 0, 1))
    assert torch.equal(first.x_adv, second.x_adv) and torch.equal(first.queries, second.queries)
    assert not torch.equal(first.x_adv, other.x_adv), "the seed must drive the randomness"
    assert float(first.x_adv.min()) >= 0.0 and float(first.x_adv.max()) <= 1.0
    assert bool(first.success.all()) and int(first.queries.max()) <= 300


@pytest.mark.cuda
def test_misclassified_cost_one_query_and_come_back_unchanged(linear_oracle: Any) -> None:
    x, y = linear_oracle.x, linear_oracle.y
    wrong = (y + 1) % 10
    res = robust.create_attack("boundary")(linear_oracle.model, x, wrong)
    assert bool(res.success.all()) and float(res.l2.max()) == 0.0
    assert res.queries.tolist() == [1] * len(y) and res.forward_passes == 1


def test_no_adversarial_start_returns_input(digits: Any) -> None:
    linear = nn.Linear(64, 10)
    with torch.no_grad():
        linear.weight.zero_()
        linear.bias.copy_(torch.arange(10.0))  # always predicts class 9
    net = nn.Sequential(nn.Flatten(), linear)
    x, y = digits.x[:8], torch.full((8,), 9)
    res = robust.create_attack("boundary", init_draws=20)(net, x, y)
    assert torch.equal(res.x_adv.cpu(), x) and not bool(res.success.any())
    assert res.queries.tolist() == [21] * 8  # the check of x, then 20 noise draws


def test_targeted_from_starting_points(linear_oracle: Any) -> None:
    x = linear_oracle.x
    targets, starts = linear_oracle.y.roll(1), x.roll(1, dims=0)  # each start is of its target class
    attack = robust.create_attack("boundary", max_queries=500, starting_points=starts)
    res = attack(linear_oracle.model, x, targets, targeted=True)
    keep = targets != linear_oracle.y
    assert bool(res.success.all())
    assert bool((res.l2.cpu()[keep] < 0.5 * (starts - x).flatten(1).norm(dim=1)[keep]).all())


@pytest.mark.parametrize("params, message", [
    ({"max_queries": 0}, "max_queries must be"),
    ({"step_adaptation": 1.0}, "step_adaptation must be"),
    ({"source_step": -0.1}, "source_step must be"),
    ({"starting_points": [0.5]}, "starting_points must be a tensor"),
    ({"starting_points": torch.zeros(3, 1, 28, 28)}, "starting_points must have the shape"),
    ({"norm": "linf"}, "norm must be one of l2"),
])
def test_rejects_bad_parameters(params: dict[str, Any], message: str, linear_oracle: Any) -> None:
    with pytest.raises(robust.RobustError, match=message):
        robust.create_attack("boundary", **params)(linear_oracle.model, linear_oracle.x, linear_oracle.y)
