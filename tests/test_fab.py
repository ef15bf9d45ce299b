"""FAB and FAB-T: the exact projections, optimality on the linear oracle, agreement with
pyautoattack's FAB-T, eps as an early exit, targeted runs and parameter checks."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import torch

import robust
from robust.attacks.fab_projections import project_l2, project_linf
from robust.errors import RobustError
from robust.ops import flat_norms, project
from robust.testing import check_attack, small_digits_model


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Small batches run faster (and time steadily) on one thread of a shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def exact_projection(t: torch.Tensor, w: torch.Tensor, c: torch.Tensor, bounds: tuple[float, float],
                     norm: str) -> tuple[torch.Tensor, torch.Tensor]:
    """An independent float64 solution by bisection on the scalar multiplier, and feasibility."""
    t, w, c = t.double(), w.double(), c.double()
    direction = torch.sign(c)[:, None] * torch.sign(w)
    room = torch.where(direction > 0, bounds[1] - t, t - bounds[0])
    scale = w.abs() if norm == "l2" else torch.ones_like(w)

    def reach(x: torch.Tensor) -> torch.Tensor:
        return (w.abs() * torch.minimum(x[:, None] * scale, room)).sum(dim=1)

    lo, hi = torch.zeros_like(c), torch.full_like(c, 1e12)
    for _ in range(200):
        mid = (lo + hi) / 2
        enough = reach(mid) >= c.abs()
        lo, hi = torch.where(enough, lo, mid), torch.where(enough, mid, hi)
    return direction * torch.minimum(hi[:, None] * scale, room), reach(torch.full_like(c, 1e30)) > c.abs()


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("dim", [3, 784])
def test_projections_are_exact(norm: str, dim: int) -> None:
    g = torch.Generator().manual_seed(dim)
    bounds = (-1.0, 2.0)
    t = -1 + 3 * torch.rand(300, dim, generator=g)
    t[:, : dim // 2 + 1] = torch.where(torch.rand(300, dim // 2 + 1, generator=g) < 0.5, -1.0, 2.0)  # ties at bounds
    w = torch.randn(300, dim, generator=g)
    w[:, dim - dim // 4:] = 0
    c = torch.randn(300, generator=g) * w.abs().sum(dim=1) * torch.rand(300, generator=g)
    d = (project_linf if norm == "linf" else project_l2)(t, w, c, bounds)
    want, feasible = exact_projection(t, w, c, bounds, norm)
    assert 50 < int(feasible.sum()) < 300, "the case should mix feasible and infeasible rows"
    assert float((t + d).min()) >= bounds[0] and float((t + d).max()) <= bounds[1]
    assert torch.allclose(d[feasible].double(), want[feasible], atol=1e-5)
    residual = ((w * d).sum(dim=1) - c)[feasible].abs()
    assert float(residual.max()) <= 1e-5 * float(w.abs().sum(dim=1).max())
    corner = torch.where(torch.sign(c)[:, None] * torch.sign(w) > 0, bounds[1] - t, bounds[0] - t) * (w != 0)
    assert torch.equal(d[~feasible], corner[~feasible]), "an unreachable hyperplane gets the box corner towards it"


def test_linf_projection_matches_the_reference() -> None:
    reference = pytest.importorskip("pyautoattack.fab_projections")
    g = torch.Generator().manual_seed(0)
    t = torch.rand(200, 784, generator=g)
    w = torch.randn(200, 784, generator=g)
    b = (w * t).sum(dim=1) + torch.randn(200, generator=g) * w.abs().sum(dim=1) / 4
    ours = project_linf(t, w, b - (w * t).sum(dim=1), (0.0, 1.0))
    assert torch.allclose(ours, reference.projection_linf(t.clone(), w.clone(), b.clone()), atol=1e-5)


@pytest.mark.cuda
@pytest.mark.parametrize("name", ["fab-t", "fab"])
@pytest.mark.parametrize("norm", ["l2", "linf"])
@pytest.mark.parametrize("steps", [10, pytest.param(100, marks=pytest.mark.slow)])
def test_linear_oracle_near_optimal(name: str, norm: str, steps: int, linear_oracle: Any) -> None:
    # On a linear model FAB reaches its fixed cycle within a few steps (the 5% overshoot and the
    # back-step leave it about 0.5% above the boundary), so 10 steps give what 100 (the default) give.
    attack = robust.create_attack(name, norm=norm, steps=steps)
    res = attack(linear_oracle.model, linear_oracle.x, linear_oracle.y)
    ratio = linear_oracle.ratios(res, norm)
    assert float(ratio.max()) <= 1.02, "FAB-T with every target must find the closest boundary"


@pytest.mark.cuda
@pytest.mark.parametrize("name", ["fab-t", "fab"])
def test_targeted_reaches_the_given_class(name: str, linear_oracle: Any) -> None:
    o = linear_oracle
    target = (o.y + 1 + torch.arange(len(o.y)) % 9) % 10
    res = robust.create_attack(name, norm="l2", steps=20)(o.model, o.x, target.to(o.model.device), targeted=True)
    assert bool(res.success.all())
    assert torch.equal(o.model.predict(res.x_adv).cpu(), target)
    # The distance to the boundary between the label and the target bounds the targeted minimum
    # from below, and is the minimum where the closest point on that boundary predicts the target.
    logits = o.x.flatten(1) @ o.weight.T + o.bias
    rows = torch.arange(len(o.y))
    normal = o.weight[target] - o.weight[o.y]
    gap = logits[rows, o.y] - logits[rows, target]
    bound = gap / normal.norm(dim=1)
    closest = o.x.flatten(1) + normal * (gap * 1.0001 / normal.square().sum(dim=1))[:, None]
    exact = (closest @ o.weight.T + o.bias).argmax(dim=1) == target
    ratio = res.l2.cpu() / bound
    print(f"{name}: {int(exact.sum())} exact rows, ratio up to {float(ratio[exact].max()):.5f} there")
    assert int(exact.sum()) >= 16
    assert float(ratio.min()) >= 0.999 and float(ratio[exact].max()) <= 1.02


def test_targets_never_exceed_the_classes() -> None:
    model = small_digits_model()
    digits = robust.load_dataset("digits")
    res = robust.create_attack("fab-t", steps=3, targets=50)(model, digits.x[:8], digits.y[:8])
    # the clean pass, then 9 targets of 3 steps (one forward and one backward pass each) and a last judging pass
    assert (res.forward_passes, res.backward_passes) == (1 + 9 * (3 + 1), 9 * 3)


@pytest.mark.parametrize("name,params", [("fab-t", {"targets": 3}), ("fab", {}), ("fab-t", {"norm": "l2", "restarts": 2})])
def test_conformance(name: str, params: dict[str, Any]) -> None:
    check_attack(robust.create_attack(name, steps=10, **params))


@pytest.mark.cuda
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_eps_makes_it_cheaper(norm: str, linear_oracle: Any) -> None:
    o = linear_oracle
    eps = float(o.min_distance(norm).max()) * 1.5  # FAB's first step (5% past the boundary) lands within
    attack = robust.create_attack("fab-t", norm=norm, steps=10)
    free, capped = attack(o.model, o.x, o.y), attack(o.model, o.x, o.y, eps=eps)
    within = free.success & (free.distance(norm) <= eps)
    assert capped.forward_passes < free.forward_passes / 10
    assert int(capped.success.sum()) >= int(within.sum()) == len(o.y)
    assert float(capped.distance(norm).max()) <= eps * (1 + 1e-5)


class RowCounter(torch.nn.Module):
    """Counts the samples the wrapped module sees."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner, self.rows = inner, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.rows += len(x)
        return self.inner(x)


def test_eps_on_a_partly_robust_batch(digits: Any) -> None:
    """With eps, points broken within it leave while the rest go on: as many broken, fewer samples through the model."""
    counted = RowCounter(small_digits_model().module)
    model = robust.Classifier(counted, device="cpu")
    x, y = digits.x[:64], digits.y[:64]
    attack = robust.create_attack("fab-t", steps=20, targets=3, restarts=2)
    free = attack(model, x, y)
    free_rows, counted.rows = counted.rows, 0
    capped = attack(model, x, y, eps=0.1)
    within = free.success & (free.linf <= 0.1)
    assert 0 < int(within.sum()) < len(x)
    assert int(capped.success.sum()) >= int(within.sum())
    assert capped.forward_passes <= free.forward_passes and counted.rows < free_rows / 2
    again = attack(model, x, y, eps=0.1, seed=1)
    assert abs(int(again.success.sum()) - int(capped.success.sum())) <= 2


@pytest.mark.parametrize("params,name", [({"steps": 0}, "steps"), ({"restarts": 0}, "restarts"), ({"eta": 0.5}, "eta"),
                                         ({"beta": 0.0}, "beta"), ({"beta": 1.5}, "beta"), ({"alpha_max": -0.1}, "alpha_max"),
                                         ({"alpha_max": 1.5}, "alpha_max"), ({"targets": 0}, "targets"),
                                         ({"norm": "l1"}, "norm")])
def test_refusals_name_the_parameter(params: dict[str, Any], name: str, linear_oracle: Any) -> None:
    attack = robust.create_attack("fab-t", **params)  # the constructor only stores them
    with pytest.raises(RobustError, match=name):
        attack(linear_oracle.model, linear_oracle.x[:2], linear_oracle.y[:2])


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_prune_gives_up_only_points_beyond_reach(norm: str, linear_oracle: Any) -> None:
    """On the linear oracle FAB lands on the closest boundary at once: points beyond 1.3 eps are given up
    after 30% of the steps, the others run as before and are broken exactly when within eps."""
    o = linear_oracle
    dist = o.min_distance(norm)
    eps = float(dist.quantile(0.3))
    runs = [robust.create_attack("fab-t", norm=norm, steps=20, prune=p)(o.model, o.x, o.y, eps=eps)
            for p in (None, 1.3)]
    assert torch.equal(runs[0].success.cpu(), runs[1].success.cpu())
    clear = (dist - eps).abs() > 0.01 * eps
    assert torch.equal(runs[1].success.cpu()[clear], (dist <= eps)[clear])
    far = int((dist > 1.3 * eps).sum())
    assert far > 0 and runs[1].backward_samples < runs[0].backward_samples - far * 10


def test_declared_defaults() -> None:
    assert robust.create_attack("fab-t").params == {"norm": "linf", "steps": 100, "restarts": 1, "eta": 1.05,
                                                    "beta": 0.9, "alpha_max": 0.1, "targets": 9,
                                                    "screen": None, "prune": None}
    fab = robust.create_attack("fab")
    assert "targets" not in fab.params and not fab.needs_eps and fab.takes_eps


@pytest.fixture(scope="module")
def mnist100(device: str) -> tuple[robust.Classifier, torch.Tensor, torch.Tensor]:
    data = robust.load_dataset("mnist", n=100)
    model = robust.load_model("cnn-at", device=device)
    return model, data.x.to(model.device), data.y.to(model.device)


@pytest.mark.parametrize("norm,eps", [("linf", 0.3), pytest.param("l2", 1.5, marks=pytest.mark.slow)])
def test_agrees_with_pyautoattack(norm: str, eps: float, mnist100: Any) -> None:
    fab_pt = pytest.importorskip("pyautoattack.fab_pt")
    model, x, y = mnist100
    steps, targets = 20, 3
    start = time.perf_counter()
    theirs = fab_pt.FABAttack_PT(model.module.eval(), norm={"linf": "Linf", "l2": "L2"}[norm], n_restarts=1,
                                 n_iter=steps, eps=eps, seed=0, targeted=True, n_target_classes=targets,
                                 device=str(model.device)).perturb(x, y)
    their_seconds = time.perf_counter() - start
    theirs = project(theirs, x, eps, norm).clamp(*model.bounds)  # judged as the harness judges ours
    l2, linf = flat_norms(theirs - x)
    their_broken = int(((model.predict(theirs) != y) & ((l2 if norm == "l2" else linf) <= eps * (1 + 1e-5))).sum())
    ours = robust.create_attack("fab-t", norm=norm, steps=steps, targets=targets)(model, x, y, eps=eps)
    our_broken = int((ours.success & (ours.distance(norm) <= eps * (1 + 1e-5))).sum())
    print(f"{norm} eps {eps}: pyautoattack breaks {their_broken} in {their_seconds:.2f} s, "
          f"ours {our_broken} in {ours.seconds:.2f} s")
    # Linf: the same algorithm, the same points (5 of 100 here). L2: ours breaks more (11 against 4), since
    # pyautoattack's L2 projection misses the hyperplane on rows where many pixels sit on the bounds.
    assert our_broken >= their_broken - 1
