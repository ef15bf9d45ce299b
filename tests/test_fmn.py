"""FMN: the linear oracle in every norm, agreement with Foolbox and adv-lib, targets, starting points and batches."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import robust
from tests.fixtures.peers import foolbox_l2


def correct_digits(model: robust.Classifier, digits: Any, n: int = 24) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = digits.x[:2 * n], digits.y[:2 * n]
    keep = model.predict(x).cpu() == y
    return x[keep][:n], y[keep][:n]



def test_l2_reaches_every_point_of_an_adversarially_trained_model(mnist500: Any) -> None:
    """On cnn-at the gradient steps alone are too short to reach the boundary estimate; scaled onto
    its sphere until the first adversarial point, every point is broken (the ball alone: 73%)."""
    model = robust.load_model("cnn-at")
    x, y = mnist500.x[:40], mnist500.y[:40]
    keep = model.predict(x).cpu() == y
    result = robust.create_attack("fmn", norm="l2", steps=100)(model, x[keep], y[keep])
    assert bool(result.success.all()), f"{int((~result.success).sum())} of {int(keep.sum())} points unbroken"
    assert float(result.l2.median()) < 2.5

def test_linf_breaks_as_many_points_of_an_adversarially_trained_model_as_adv_lib(mnist500: Any) -> None:
    """The same 100 steps on cnn-at: no fewer points broken than adv-lib's FMN, and no larger median."""
    pytest.importorskip("adv_lib")
    from robust.comparison.advlib import attacks

    model = robust.load_model("cnn-at")
    x, y = mnist500.x[:100], mnist500.y[:100]
    keep = model.predict(x).cpu() == y
    x, y = x[keep], y[keep]
    ours = robust.create_attack("fmn", norm="linf", steps=100)(model, x, y)
    theirs = attacks().fmn(model.module.eval(), x, y, norm=float("inf"), steps=100)
    broken = model.predict(theirs).cpu() != y
    size = (theirs - x).flatten(1).abs().amax(dim=1)
    assert int(ours.success.sum()) >= int(broken.sum())
    inf = torch.tensor(float("inf"))
    assert float(torch.where(ours.success, ours.linf.cpu(), inf).median()) <= float(torch.where(broken, size, inf).median()) + 1e-6


@pytest.mark.cuda
@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_linear_oracle_within_one_percent(norm: str, linear_oracle: Any) -> None:
    """Known minimal distances (Linf: |margin| / ||w_y - w_k||_1): 1000 steps land within 1% on average."""
    o = linear_oracle
    res = robust.create_attack("fmn", norm=norm, steps=1000)(o.model, o.x, o.y)
    ratio = o.ratios(res, norm)
    assert float(ratio.mean()) <= 1.01, ratio
    assert (res.forward_passes, res.backward_passes) == (1001, 1000)


def test_l1_on_the_linear_oracle(linear_oracle: Any) -> None:
    """Exact L1 minima (the box binds: a greedy fill of the coordinates of largest weight difference).
    FMN's L1 search stalls above the minimum on a few points (adv-lib's and Foolbox's on the same
    ones), so the median is held to 0.1% and the mean to 2%."""
    o = linear_oracle
    res = robust.create_attack("fmn", norm="l1", steps=1000)(o.model, o.x, o.y)
    ratio = o.ratios(res, "l1")
    assert float(ratio.median()) <= 1.001 and float(ratio.mean()) <= 1.02, ratio


def test_l0_on_the_linear_oracle() -> None:
    """Exact L0 minima (the fewest coordinates whose move to the bounds crosses the boundary): a
    larger bias puts the points 1 to 7 coordinates away; FMN finds the minimum on most."""
    from tests.conftest import LinearOracle

    o = LinearOracle(bias=3.0)
    assert float(o.min_distance("l0").max()) >= 5, "the oracle must need several coordinates"
    res = robust.create_attack("fmn", norm="l0", steps=100)(o.model, o.x, o.y)
    ratio = o.ratios(res, "l0")
    assert float(ratio.median()) == 1.0 and float(ratio.mean()) <= 1.06, ratio
    assert torch.equal(res.l0, res.l0.round()), "l0 counts components"


@pytest.mark.parametrize("norm, p", [("l1", 1), ("l0", 0)])
def test_l1_and_l0_break_as_many_points_as_adv_lib(norm: str, p: int, zoo_cnn: robust.Classifier,
                                                   mnist_correct: Any) -> None:
    """The same 100 steps on the zoo's cnn: no fewer points broken than adv-lib's FMN, no larger median."""
    pytest.importorskip("adv_lib")
    from robust.comparison.advlib import attacks
    from robust.ops import lp_norms

    x, y = mnist_correct
    ours = robust.create_attack("fmn", norm=norm, steps=100)(zoo_cnn, x, y)
    theirs = attacks().fmn(zoo_cnn.module.eval(), x, y, norm=p, steps=100)
    broken = zoo_cnn.predict(theirs).cpu() != y
    assert int(ours.success.sum()) >= int(broken.sum())
    inf = torch.tensor(float("inf"))
    mine = float(torch.where(ours.success, ours.distance(norm).cpu(), inf).median())
    assert mine <= float(torch.where(broken, lp_norms(theirs - x, norm), inf).median()) + 1e-5


def test_as_close_as_foolbox(zoo_cnn: robust.Classifier, mnist_correct: Any) -> None:
    x, y = mnist_correct
    fb_l2 = foolbox_l2(zoo_cnn, "L2FMNAttack", x, y, steps=100)
    ours = robust.create_attack("fmn", norm="l2", steps=100)(zoo_cnn, x, y)
    assert bool(ours.success.all())
    assert float(ours.l2.median()) <= 1.02 * float(fb_l2.median()), (float(ours.l2.median()), float(fb_l2.median()))


@pytest.mark.cuda
@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_targeted_reaches_the_targets(norm: str, linear_oracle: Any) -> None:
    o = linear_oracle
    target = (o.y + 3) % 10
    res = robust.create_attack("fmn", norm=norm, steps=200)(o.model, o.x, target, targeted=True)
    assert bool(res.success.all())
    assert torch.equal(o.model.predict(res.x_adv).cpu(), target)
    # beating y alone needs the distance to the boundary between y and the target (dual norm below)
    diff = o.weight[o.y] - o.weight[target]
    gap = (o.x.flatten(1) * diff).sum(1) + o.bias[o.y] - o.bias[target]
    needed = gap / diff.norm(p=2 if norm == "l2" else 1, dim=1)
    assert bool((res.distance(norm).cpu() >= 0.999 * needed).all())


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_starting_points_are_bisected_towards_x(norm: str, digits_model: robust.Classifier, digits: Any) -> None:
    x, y = correct_digits(digits_model, digits)
    far = robust.create_attack("pgd", norm=norm, steps=20)(digits_model, x, y, eps=1.0 if norm == "linf" else 6.0)
    given = far.success.cpu()
    assert int(given.sum()) >= 12, "most starting points must be adversarial"
    start = torch.where(given.view(-1, 1, 1, 1), far.x_adv.cpu(), x)  # the rest are not adversarial: they start at x
    relative = {}
    for searches in (0, 10):
        fmn = robust.create_attack("fmn", norm=norm, steps=1, binary_search_steps=searches, starting_points=start)
        res = fmn(digits_model, x, y)
        assert bool(res.success.cpu()[given].all())
        relative[searches] = res.distance(norm).cpu()[given] / far.distance(norm).cpu()[given]
        assert float(relative[searches].max()) <= 1 + 1e-5, "the search never moves away from x"
    assert float(relative[0].mean()) >= 0.95, "without bisection the one step starts at the starting points"
    assert float(relative[10].mean()) <= 0.8, "bisection brings the starting points towards x"


def test_starting_points_must_match_x(digits_model: robust.Classifier, digits: Any) -> None:
    x, y = correct_digits(digits_model, digits, 4)
    with pytest.raises(robust.RobustError, match="starting_points must have the shape"):
        robust.create_attack("fmn", starting_points=x[:2])(digits_model, x, y)


def test_starting_points_of_misclassified_points_are_not_bisected(digits_model: robust.Classifier,
                                                                   digits: Any) -> None:
    """(Without starting points, test_ddn covers a batch that is all misclassified, for FMN too.)"""
    x = digits.x[:24]
    wrong = (digits_model.predict(x).cpu() + 1) % 10
    res = robust.create_attack("fmn", steps=20, starting_points=x)(digits_model, x, wrong)  # no bisection to do
    assert bool(res.success.all()) and float(res.linf.max()) == 0.0


def test_passes_do_not_grow_with_the_batch(digits_model: robust.Classifier, digits: Any) -> None:
    x, y = correct_digits(digits_model, digits)
    attack = robust.create_attack("fmn", norm="l2", steps=15)
    one, many = attack(digits_model, x[:1], y[:1]), attack(digits_model, x, y)
    assert (one.forward_passes, one.backward_passes) == (many.forward_passes, many.backward_passes) == (16, 15)
    assert many.forward_samples == 16 * len(x)


def test_step_size_and_gamma_are_annealed() -> None:
    fmn = robust.create_attack("fmn", alpha_init=2.0)
    assert fmn.step_size(0, 100) == pytest.approx(2.0)
    assert fmn.step_size(50, 100) == pytest.approx((2.0 + 0.02) / 2)
    assert fmn.step_size(100, 100) == pytest.approx(0.02)  # alpha_final None: alpha_init / 100
    assert robust.create_attack("fmn", alpha_final=0.5).step_size(100, 100) == pytest.approx(0.5)


@pytest.mark.parametrize("params, message", [
    ({"steps": 0}, "steps must be"),
    ({"alpha_init": 0.0}, "alpha_init must be"),
    ({"alpha_final": -1.0}, "alpha_final must be"),
    ({"gamma_init": 1.0}, "gamma_init must be"),
    ({"gamma_final": -0.1}, "gamma_final must be"),
    ({"binary_search_steps": -1}, "binary_search_steps must be"),
    ({"starting_points": 3}, "starting_points must be"),
    ({"norm": "l3"}, "norm must be one of linf, l2, l1, l0"),
])
def test_rejects_bad_parameters(params: dict[str, Any], message: str, digits_model: robust.Classifier,
                                digits: Any) -> None:
    with pytest.raises(robust.RobustError, match=message):
        robust.create_attack("fmn", **params)(digits_model, digits.x[:4], digits.y[:4])
