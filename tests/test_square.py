"""Square attack: conformance, the same success as pyautoattack's at the same budget, query accounting."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch import nn

import robust
from robust.errors import RobustError
from robust.testing import check_attack, small_digits_model

# The comparison with pyautoattack: the zoo CNN on the first MNIST test images at 300 queries,
# at eps values where about half the points fall. Measured on 100 points over seeds 0-7, the
# per-seed gap (ours minus theirs) ranged from -3 to +7 points for Linf and -3 to +3 for L2,
# while either attack alone moved by up to 6 points between seeds: one seed pair is held to 8
# points. The slow test averages three seeds on 200 points (gaps of +0.9 and +1.0 measured)
# and holds the mean to 4 points.
BUDGET = 300
EPS = {"linf": 0.23, "l2": 2.5}


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """The search is many small batched calls; on a busy 2-core CPU a second thread only adds hand-offs."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class RowCounter(nn.Module):
    """Counts the rows (samples) of every forward call: each row is one query of that sample."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.rows = 0
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.rows += len(x)
        self.calls += 1
        return self.inner(x)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_conformance(norm: str) -> None:
    check_attack(robust.create_attack("square", norm=norm, queries=200))


def success_rates(norm: str, model: robust.Classifier, x: torch.Tensor, y: torch.Tensor, seed: int
                  ) -> tuple[float, float]:
    """Success of ours and of pyautoattack's SquareAttack at the same budget and seed, both judged here."""
    square = pytest.importorskip("pyautoattack.square")
    eps = EPS[norm]
    start = time.perf_counter()
    ours = robust.create_attack("square", norm=norm, queries=BUDGET)(model, x, y, eps=eps, seed=seed)
    t_ours = time.perf_counter() - start
    assert ours.queries is not None and int(ours.queries.max()) <= BUDGET
    # The same forward passes per sample: theirs checks the clean input outside its count, then
    # makes one query for the start and n_queries proposals; ours counts all three within BUDGET.
    theirs = square.SquareAttack(model.module, norm="Linf" if norm == "linf" else "L2", n_queries=BUDGET - 2,
                                 eps=eps, p_init=0.8, n_restarts=1, seed=seed, device=str(model.device),
                                 resc_schedule=False)
    start = time.perf_counter()
    with torch.no_grad():
        adv = theirs.perturb(x.clone(), y.clone())
    t_theirs = time.perf_counter() - start
    delta = (adv - x).flatten(1)
    size = delta.abs().amax(dim=1) if norm == "linf" else delta.norm(dim=1)
    lo, hi = model.bounds
    valid = (size <= eps * (1 + 1e-5)) & (adv.flatten(1).amin(dim=1) >= lo) & (adv.flatten(1).amax(dim=1) <= hi)
    their_success = float(((model.predict(adv) != y) & valid).float().mean())
    our_success = float(ours.success.float().mean())
    print(f"\nsquare {norm} eps={eps}, {BUDGET} queries, {len(x)} points, seed {seed}: ours {our_success:.1%} "
          f"in {t_ours:.1f}s, pyautoattack {their_success:.1%} in {t_theirs:.1f}s")
    return our_success, their_success


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_success_matches_pyautoattack(norm: str, zoo_cnn: robust.Classifier, mnist500: Any) -> None:
    x, y = mnist500.x[:100].to(zoo_cnn.device), mnist500.y[:100].to(zoo_cnn.device)
    ours, theirs = success_rates(norm, zoo_cnn, x, y, seed=0)
    assert 0.2 <= ours <= 0.8, "eps should leave the comparison away from 0% and 100%"
    assert abs(ours - theirs) <= 0.08


@pytest.mark.slow
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_success_matches_pyautoattack_over_seeds(norm: str, zoo_cnn: robust.Classifier, mnist500: Any) -> None:
    x, y = mnist500.x[:200].to(zoo_cnn.device), mnist500.y[:200].to(zoo_cnn.device)
    rates = [success_rates(norm, zoo_cnn, x, y, seed) for seed in range(3)]
    ours, theirs = (sum(r[i] for r in rates) / len(rates) for i in range(2))
    print(f"square {norm}: mean success over seeds 0-2, ours {ours:.1%}, pyautoattack {theirs:.1%}")
    assert abs(ours - theirs) <= 0.04


def test_lobes_are_the_reference_pattern() -> None:
    square = pytest.importorskip("pyautoattack.square")
    from robust.attacks.square_l2 import lobes

    reference = square.SquareAttack(None, norm="L2", device="cpu")
    for side in range(1, 14):
        theirs = reference.eta(side).double()  # transposed at random
        ours = lobes(side, torch.device("cpu"), torch.float64)
        assert min(float((theirs - ours[0]).abs().max()), float((theirs - ours[1]).abs().max())) < 1e-6, side


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_queries_are_budgeted(norm: str, digits: Any) -> None:
    counter = RowCounter(small_digits_model().module)
    model = robust.Classifier(counter, device="cpu")
    x, y = digits.x[:60], digits.y[:60].clone()
    pred = model.predict(x)
    y[:10] = (pred[:10] + 1) % 10  # these ten are misclassified before any query
    counter.rows = counter.calls = 0
    budget = 100
    eps = 0.15 if norm == "linf" else 1.0
    res = robust.create_attack("square", norm=norm, queries=budget)(model, x, y, eps=eps, seed=0)
    q = res.queries
    assert q is not None and q.dtype == torch.long and q.shape == (len(x),)
    assert int(q.min()) >= 1 and int(q.max()) <= budget
    assert bool((q[:10] == 1).all()), "a misclassified point needs only the clean check"
    fooled = res.success[10:]
    assert bool(fooled.any()) and bool((~fooled).any()), "the budget should fool some points, not all"
    assert bool((q[10:][~fooled] == budget).all()), "a robust point uses its whole budget"
    assert float(q[10:][fooled].float().mean()) < budget / 2, "a fooled point stops querying"
    rows_in_run = counter.rows - len(x)  # the harness's judging pass runs once over the batch
    assert rows_in_run == int(q.sum()) < budget * len(x)
    assert counter.calls - 1 <= budget, "one batched call per iteration"


@pytest.mark.cuda
def test_restarts_share_the_budget(digits_model: robust.Classifier, digits: Any) -> None:
    x, y = digits.x[:40], digits.y[:40]
    one = robust.create_attack("square", queries=90)(digits_model, x, y, eps=0.1, seed=1)
    three = robust.create_attack("square", queries=90, restarts=3)(digits_model, x, y, eps=0.1, seed=1)
    assert one.queries is not None and three.queries is not None
    assert int(one.queries.max()) <= 90 and int(three.queries.max()) <= 90
    assert bool((~three.success).any()), "the budget should leave some points robust"
    assert bool((three.queries[~three.success] == 90).all()), "a robust point runs every restart to the end"
    assert not torch.equal(one.x_adv, three.x_adv)


@pytest.mark.cuda
def test_targeted(digits_model: robust.Classifier, digits: Any) -> None:
    x, y = digits.x[:40], digits.y[:40]
    target = (y + 1) % 10
    for norm, eps in (("linf", 0.3), ("l2", 3.0)):
        res = robust.create_attack("square", norm=norm, queries=300)(digits_model, x, target, eps=eps, targeted=True)
        predicted = digits_model.predict(res.x_adv).cpu()
        assert torch.equal(res.success.cpu(), predicted == target)
        assert float(res.success.float().mean()) >= 0.5, (norm, float(res.success.float().mean()))
        assert res.queries is not None and int(res.queries.max()) <= 300


def test_bf16_model_gives_the_same_points(digits: Any) -> None:
    """Every query is a gradient-free pass, which a bf16 Classifier runs in fp32: same points, same successes."""
    x, y = digits.x[:30], digits.y[:30]
    net = small_digits_model().module
    plain = robust.create_attack("square", queries=80)(robust.Classifier(net, device="cpu"), x, y, eps=0.1, seed=2)
    fast = robust.Classifier(net, device="cpu").accelerate("bf16")
    accelerated = robust.create_attack("square", queries=80)(fast, x, y, eps=0.1, seed=2)
    assert torch.equal(plain.x_adv, accelerated.x_adv) and torch.equal(plain.success, accelerated.success)


def test_flat_inputs(digits: Any) -> None:
    net = small_digits_model().module
    model = robust.Classifier(net, device="cpu")
    x, y = digits.x[:30].flatten(1), digits.y[:30]
    for norm, eps in (("linf", 0.2), ("l2", 2.0)):
        res = robust.create_attack("square", norm=norm, queries=100)(model, x, y, eps=eps, seed=0)
        assert res.x_adv.shape == x.shape and bool(res.success.any())
        assert float(res.distance(norm).max()) <= eps * (1 + 1e-5)
    with pytest.raises(RobustError, match="needs images"):
        robust.create_attack("square")(model, digits.x[:4, 0], y[:4], eps=0.1)


@pytest.mark.parametrize("name, value", [("norm", "l1"), ("queries", 0), ("p_init", 0.0), ("p_init", 1.5),
                                         ("restarts", 0), ("loss", "dlr"), ("queries", 2.5)])
def test_refusals_name_the_parameter(name: str, value: object, digits_model: robust.Classifier, digits: Any) -> None:
    attack = robust.create_attack("square", **{name: value})
    with pytest.raises(RobustError, match=name):
        attack(digits_model, digits.x[:4], digits.y[:4], eps=0.1)


def test_needs_eps(digits_model: robust.Classifier, digits: Any) -> None:
    with pytest.raises(RobustError, match="needs eps"):
        robust.create_attack("square")(digits_model, digits.x[:4], digits.y[:4])


@pytest.mark.parametrize("norm,eps", [("linf", 0.1), ("l2", 1.0)])
def test_prune_gives_up_only_points_far_from_the_boundary(norm: str, eps: float, digits_model: robust.Classifier,
                                                          digits: Any) -> None:
    from robust.attacks.square import PRUNE_AT
    from robust.losses import dlr

    x, y = digits.x[:160], digits.y[:160]
    budget, prune = 200, 0.3
    full = robust.create_attack("square", norm=norm, queries=budget)(digits_model, x, y, eps=eps, seed=0)
    pruned = robust.create_attack("square", norm=norm, queries=budget, prune=prune)(digits_model, x, y, eps=eps, seed=0)
    assert full.queries is not None and pruned.queries is not None
    assert int(pruned.queries.sum()) < int(full.queries.sum())
    with torch.no_grad():
        closeness = dlr(digits_model(pruned.x_adv).float(), y.to(pruned.x_adv.device)).cpu()
    given_up = torch.zeros(len(x), dtype=torch.bool)
    for share, level in PRUNE_AT:  # a point given up stopped at a checkpoint (+1: the clean check) ...
        at = (pruned.queries.cpu() == int(share * (budget - 1)) + 1) & ~pruned.success.cpu()
        assert bool((closeness[at] < -level * prune).all()), "... and its best point was below that checkpoint's level"
        given_up |= at
    assert 0 < int(given_up.sum()) < len(x)
    ran_out = (pruned.queries.cpu() == budget) & ~pruned.success.cpu()
    assert bool(ran_out.any()), "a point kept within reach searches to the end"
