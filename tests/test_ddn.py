"""DDN: the linear oracle, agreement with Foolbox, targets, batches and parameter checks."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import robust
from tests.fixtures.peers import foolbox_l2


@pytest.mark.cuda
def test_linear_oracle_within_a_thousandth(linear_oracle: Any) -> None:
    """On a linear model the minimal L2 distances are known: 1000 steps land within 0.1% on average."""
    o = linear_oracle
    res = robust.create_attack("ddn", steps=1000)(o.model, o.x, o.y)
    ratio = o.ratios(res, "l2")
    assert float(ratio.mean()) <= 1.001, ratio
    # one batched pass per step for all 64 points (and one more forward pass for the last point)
    assert (res.forward_passes, res.backward_passes) == (1001, 1000)


def test_as_close_as_foolbox(zoo_cnn: robust.Classifier, mnist_correct: Any) -> None:
    x, y = mnist_correct
    fb_l2 = foolbox_l2(zoo_cnn, "DDNAttack", x, y, steps=100)
    ours = robust.create_attack("ddn", steps=100)(zoo_cnn, x, y)
    assert bool(ours.success.all())
    assert float(ours.l2.median()) <= 1.02 * float(fb_l2.median()), (float(ours.l2.median()), float(fb_l2.median()))


@pytest.mark.cuda
def test_targeted_reaches_the_targets(linear_oracle: Any) -> None:
    o = linear_oracle
    target = (o.y + 3) % 10
    res = robust.create_attack("ddn", steps=300)(o.model, o.x, target, targeted=True)
    assert bool(res.success.all())
    assert torch.equal(o.model.predict(res.x_adv).cpu(), target)
    # beating y alone needs the distance to the boundary between y and the target
    gap = (o.x.flatten(1) @ (o.weight[o.y] - o.weight[target]).T).diagonal() + o.bias[o.y] - o.bias[target]
    needed = gap / (o.weight[o.y] - o.weight[target]).norm(dim=1)
    assert bool((res.l2.cpu() >= 0.999 * needed).all())


@pytest.mark.parametrize("name", ["ddn", "fmn"])  # NormSearch's loop, shared by both
def test_points_already_misclassified_leave_at_once(name: str, digits_model: robust.Classifier, digits: Any) -> None:
    """The digits model raises on an empty batch: a batch that is all misclassified costs one pass."""
    x = digits.x[:24]
    wrong = (digits_model.predict(x).cpu() + 1) % 10
    res = robust.create_attack(name, steps=20)(digits_model, x, wrong)
    assert bool(res.success.all()) and float(res.l2.max()) == 0.0
    assert (res.forward_passes, res.backward_passes) == (1, 1)


def test_misclassified_rows_leave_the_batch(digits_model: robust.Classifier, digits: Any) -> None:
    x, y = digits.x[:24], digits.y[:24]
    pred = digits_model.predict(x).cpu()
    labels = torch.where(torch.arange(24) % 2 == 0, (pred + 1) % 10, pred)  # half misclassified
    steps = 20
    res = robust.create_attack("ddn", steps=steps)(digits_model, x, labels)
    assert float(res.l2[::2].max()) == 0.0 and bool(res.success.all())
    # the first pass sees all 24 points, the other 19 gradient passes and the final check only the 12 left
    assert res.forward_samples == 24 + steps * 12


def test_passes_do_not_grow_with_the_batch(digits_model: robust.Classifier, digits: Any) -> None:
    x, y = digits.x[:32], digits.y[:32]
    keep = digits_model.predict(x).cpu() == y
    attack = robust.create_attack("ddn", steps=15)
    one, many = attack(digits_model, x[keep][:1], y[keep][:1]), attack(digits_model, x[keep], y[keep])
    assert (one.forward_passes, one.backward_passes) == (many.forward_passes, many.backward_passes) == (16, 15)


@pytest.mark.parametrize("params, message", [
    ({"steps": 0}, "steps must be"),
    ({"gamma": 0.0}, "gamma must be"),
    ({"gamma": 1.0}, "gamma must be"),
    ({"init_norm": 0.0}, "init_norm must be"),
    ({"norm": "linf"}, "norm must be one of l2"),
    ({"step_size": 0.1}, "unknown parameter 'step_size'"),
])
def test_rejects_bad_parameters(params: dict[str, Any], message: str, digits_model: robust.Classifier,
                                digits: Any) -> None:
    with pytest.raises(robust.RobustError, match=message):
        robust.create_attack("ddn", **params)(digits_model, digits.x[:4], digits.y[:4])
