"""APGD and APGD-T: the checkpoint schedule, the linear oracle, and agreement with AutoAttack's own code."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import robust
from robust.attacks.checkpoints import CheckpointStepper, checkpoints
from robust.gradient import descend
from robust.losses import margin

EPS = 0.3


@pytest.fixture(scope="module")
def at_points(mnist500: Any) -> tuple[robust.Classifier, torch.Tensor, torch.Tensor]:
    """The zoo's adversarially trained CNN and 200 MNIST test images."""
    return robust.load_model("cnn-at"), mnist500.x[:200], mnist500.y[:200]


def test_checkpoints_follow_the_paper() -> None:
    # 22% of the steps, then intervals 3% shorter each time, down to 6%
    assert sorted(checkpoints(100)) == [22, 41, 57, 70, 80, 87, 93, 99]
    assert sorted(checkpoints(10)) == list(range(2, 11))
    assert checkpoints(1) == {1}


def test_a_stalled_loss_halves_the_step_and_returns_to_the_best_point(linear_oracle: Any) -> None:
    """On a linear model the margin only rises until the ball's corner: then every checkpoint halves."""
    o = linear_oracle
    x, y = o.x[:8], o.y[:8]
    stepper = CheckpointStepper(x, 0.001, "linf", 50, 0.75, (0.0, 1.0))
    descend(o.model, y, x, stepper, steps=50, loss=margin, early_exit=False)
    halvings = torch.log2(2 * 0.001 / stepper.size).round()
    assert int(halvings.min()) >= 3, halvings  # most checkpoints saw no progress once the corner was reached
    best = stepper.result(x)
    assert float((best - x).abs().max()) <= 0.001 + 1e-7
    with torch.no_grad():
        reached, clean = margin(o.model(best), y), margin(o.model(x), y)
    assert torch.allclose(reached, stepper.best, atol=1e-6), "the best point is not the one whose loss was kept"
    assert bool((reached > clean).all())


@pytest.mark.cuda
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_linear_oracle(norm: str, linear_oracle: Any) -> None:
    """A point falls at eps exactly when its minimal distance is below eps."""
    o = linear_oracle
    dist = o.min_distance(norm)
    eps = float(dist.median())
    res = robust.create_attack("apgd", norm=norm, steps=50, loss="dlr")(o.model, o.x, o.y, eps=eps)
    clear = (dist - eps).abs() > 0.03 * eps
    assert torch.equal(res.success.cpu()[clear], (dist < eps)[clear])


@pytest.mark.cuda
def test_targeted_call_reaches_the_targets(linear_oracle: Any) -> None:
    o = linear_oracle
    target = (o.y + 1) % 10
    logits = o.x.flatten(1) @ o.weight.T + o.bias
    rows = torch.arange(len(o.y))
    needed = (logits[rows, o.y] - logits[rows, target]) / (o.weight[o.y] - o.weight[target]).abs().sum(1)
    eps = 2.0 * float(needed.max())  # Linf: beating y needs the gap over the dual (L1) norm; other classes need more
    res = robust.create_attack("apgd-t", steps=30)(o.model, o.x, target, eps=eps, targeted=True)
    assert bool(res.success.all())
    assert torch.equal(o.model.predict(res.x_adv).cpu(), target)


def test_apgd_t_tries_no_more_targets_than_classes() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    model = robust.Classifier(net)
    x = torch.rand(16, 1, 2, 2)
    y = model.predict(x).cpu()
    res = robust.create_attack("apgd-t", steps=5, targets=9)(model, x, y, eps=0.01)
    assert res.forward_passes <= 1 + 2 * (5 + 2)  # clean logits, then 2 targets of 6 evaluations (+ a restart check)


@pytest.mark.parametrize("loss", ["ce", pytest.param("dlr", marks=pytest.mark.slow)])
def test_apgd_agrees_with_autoattack(loss: str, at_points: Any) -> None:
    """Same steps and restarts as AutoAttack's APGD: robust accuracy within 0.5 points, no point lost."""
    pytest.importorskip("pyautoattack")
    from pyautoattack.autopgd_base import APGDAttack

    model, x, y = at_points
    theirs = APGDAttack(model.module.eval(), n_iter=100, norm="Linf", eps=EPS, loss=loss, seed=0, device="cpu")
    their_robust = model.predict(theirs.perturb(x, y)).cpu() == y
    ours = robust.create_attack("apgd", loss=loss)(model, x, y, eps=EPS)
    our_robust = (model.predict(x).cpu() == y) & ~ours.success.cpu()
    assert float(our_robust.float().mean()) <= float(their_robust.float().mean()) + 0.005
    assert int((our_robust & ~their_robust).sum()) <= 1
    assert (ours.forward_passes, ours.backward_passes) == (101, 101)


def test_l2_clips_before_it_projects_and_beats_autoattacks_order(at_points: Any) -> None:
    """In L2 the official code projects a 2 * eps step onto the ball before clipping it, which wastes
    budget on MNIST's saturated pixels; ours clips first and leaves clearly fewer points robust."""
    pytest.importorskip("pyautoattack")
    from pyautoattack.autopgd_base import APGDAttack

    model, x, y = at_points
    theirs = APGDAttack(model.module.eval(), n_iter=50, norm="L2", eps=2.0, loss="ce", seed=0, device="cpu")
    their_robust = model.predict(theirs.perturb(x, y)).cpu() == y
    ours = robust.create_attack("apgd", norm="l2", steps=50)(model, x, y, eps=2.0)
    our_robust = (model.predict(x).cpu() == y) & ~ours.success.cpu()
    assert int(our_robust.sum()) <= int(their_robust.sum()) - 6  # 200 points: at least 3 points of robust accuracy
    assert float(ours.l2.max()) <= 2.0 * (1 + 1e-5) and float(ours.x_adv.min()) >= 0 and float(ours.x_adv.max()) <= 1


def test_apgd_t_agrees_with_autoattack(at_points: Any) -> None:
    pytest.importorskip("pyautoattack")
    from pyautoattack.autopgd_base import APGDAttack_targeted

    model, x, y = at_points
    x, y = x[:100], y[:100]
    theirs = APGDAttack_targeted(model.module.eval(), n_iter=30, norm="Linf", eps=EPS, seed=0, device="cpu",
                                 n_target_classes=3)
    their_robust = model.predict(theirs.perturb(x, y)).cpu() == y
    ours = robust.create_attack("apgd-t", steps=30, targets=3)(model, x, y, eps=EPS)
    our_robust = (model.predict(x).cpu() == y) & ~ours.success.cpu()
    assert int(our_robust.sum()) <= int(their_robust.sum()) + 1
