"""The harness's norms and projections: every norm measured one way, every ball projected exactly."""

from __future__ import annotations

import pytest
import torch

from robust.ops import largest, lp_norms, project, shrink


def batch(seed: int = 0, n: int = 32) -> torch.Tensor:
    return torch.randn(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def test_norms_of_a_known_perturbation() -> None:
    delta = torch.zeros(2, 3, 2, 2)
    delta[0, 0, 0, 0], delta[0, 1, 1, 1] = 3.0, -4.0
    assert lp_norms(delta, "linf").tolist() == [4.0, 0.0]
    assert lp_norms(delta, "l2").tolist() == [5.0, 0.0]
    assert lp_norms(delta, "l1").tolist() == [7.0, 0.0]
    assert lp_norms(delta, "l0").tolist() == [2.0, 0.0]


@pytest.mark.parametrize("norm", ["linf", "l2", "l1", "l0"])
def test_shrink_lands_on_the_ball_and_leaves_points_inside_alone(norm: str) -> None:
    delta = batch()
    radius = lp_norms(delta, norm) * torch.linspace(0.05, 2.0, len(delta))
    if norm == "l0":
        radius = radius.floor()
    out = shrink(delta, radius, norm)
    inside = radius >= lp_norms(delta, norm)
    assert torch.allclose(lp_norms(out, norm), torch.minimum(radius, lp_norms(delta, norm)), rtol=1e-5)
    assert torch.equal(out[inside], delta[inside])
    assert bool((out * delta >= 0).all()), "a projection never flips a component's sign"


def test_l1_projection_is_the_closest_point_of_the_ball() -> None:
    """No point of the L1 ball is closer (in L2) than the projection: random points of the ball
    (projections of random directions, and the projection moved along the ball's surface) all lose."""
    v = batch(1, n=8).flatten(1)
    radius = torch.full((len(v),), 5.0)
    p = shrink(v, radius, "l1")
    best = (v - p).norm(dim=1)
    for seed in range(20):
        other = shrink(p + 0.05 * batch(seed + 2, n=8).flatten(1), radius, "l1")
        assert bool(((v - other).norm(dim=1) >= best - 1e-5).all())


def test_l1_projection_equals_adv_libs() -> None:
    adv_lib = pytest.importorskip("adv_lib.utils.projections")
    delta = batch(3).flatten(1)
    radius = torch.rand(len(delta), generator=torch.Generator().manual_seed(4)) * 40
    radius[0] = 0.0
    ours = shrink(delta, radius, "l1")
    assert torch.allclose(ours, adv_lib.l1_ball_euclidean_projection(delta.clone(), radius), atol=1e-6)


def test_l0_projection_keeps_the_largest_components() -> None:
    delta = torch.tensor([[0.5, -3.0, 0.1, 2.0, -1.0]])
    assert shrink(delta, torch.tensor([2.0]), "l0").tolist() == [[0.0, -3.0, 0.0, 2.0, 0.0]]
    assert shrink(delta, torch.tensor([2.9]), "l0").tolist() == [[0.0, -3.0, 0.0, 2.0, 0.0]], "radius counts whole components"
    assert shrink(delta, torch.tensor([0.0]), "l0").tolist() == [[0.0] * 5]
    assert torch.equal(shrink(delta, torch.tensor([9.0]), "l0"), delta)


def test_project_around_x_and_the_whole_box() -> None:
    x = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(5))
    far = x + batch(6, n=4)[:, :, :8, :8].expand(4, 3, 8, 8)
    for norm, eps in (("l1", 3.0), ("l0", 5.0), ("l2", 1.0), ("linf", 0.1)):
        assert bool((lp_norms(project(far, x, eps, norm) - x, norm) <= eps * (1 + 1e-5)).all()), norm
    assert [largest(n, 2.0, 4) for n in ("linf", "l2", "l1", "l0")] == [2.0, 4.0, 8.0, 4.0]
