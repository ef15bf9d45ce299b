"""Carlini and Wagner L2: the linear oracle, agreement with Foolbox, targets and failures."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import robust


def correct_points(model: robust.Classifier, data: Any, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    keep = model.predict(data.x).cpu() == data.y
    return data.x[keep][:n], data.y[keep][:n]


@pytest.mark.cuda
def test_cw_reaches_linear_oracle_minimum(linear_oracle: Any) -> None:
    """On a linear model the minimal L2 distances are known: CW gets within 2% (median), never below."""
    o = linear_oracle
    x, y, dist = o.x[:32], o.y[:32], o.min_distance("l2")[:32]
    # The oracle's distances (about 0.02) are small next to Adam's step at lr=0.01, hence lr=1e-3.
    cw = robust.create_attack("cw", steps=500, binary_search_steps=7, lr=1e-3, initial_const=1e-2)
    res = cw(o.model, x, y)
    assert bool(res.success.all())
    ratio = res.l2.cpu() / dist
    assert float(ratio.median()) <= 1.02, ratio
    assert float(ratio.min()) >= 0.999, ratio


def test_cw_agrees_with_foolbox(zoo_cnn: robust.Classifier, mnist500: Any) -> None:
    foolbox = pytest.importorskip("foolbox")
    x, y = correct_points(zoo_cnn, mnist500, 32)
    hp = {"steps": 50, "binary_search_steps": 4, "confidence": 0.0, "initial_const": 0.1, "abort_early": True}
    ours = robust.create_attack("cw", lr=0.05, **hp)(zoo_cnn, x, y)
    fmodel = foolbox.PyTorchModel(zoo_cnn.module.eval(), bounds=(0, 1))
    attack = foolbox.attacks.L2CarliniWagnerAttack(stepsize=0.05, **hp)
    raw, _, _ = attack(fmodel, x.to(zoo_cnn.device), y.to(zoo_cnn.device), epsilons=None)
    # Foolbox returns an all-zero image where it found nothing; the model may misclassify it.
    found = raw.flatten(1).abs().amax(dim=1) > 0
    fb_success = (zoo_cnn.predict(raw) != y.to(zoo_cnn.device)) & found
    fb_l2 = (raw - x.to(raw.device)).flatten(1).norm(dim=1)
    assert float(ours.success.float().mean()) >= float(fb_success.float().mean())
    assert bool(fb_success.any()) and bool(ours.success.any())
    assert float(ours.l2[ours.success].median()) <= float(fb_l2[fb_success].median()) * 1.02



def test_abort_early_stops_when_foolbox_does(zoo_cnn: robust.Classifier, mnist500: Any) -> None:
    """A short run with a large step: the paper's batch rule keeps every point going as Foolbox
    does, so the smallest perturbations found are the same, point by point."""
    foolbox = pytest.importorskip("foolbox")
    x, y = correct_points(zoo_cnn, mnist500, 48)
    hp = {"steps": 20, "binary_search_steps": 1, "initial_const": 1.0, "abort_early": True}
    ours = robust.create_attack("cw", lr=0.1, **hp)(zoo_cnn, x, y)
    fmodel = foolbox.PyTorchModel(zoo_cnn.module.eval(), bounds=(0, 1))
    raw, _, _ = foolbox.attacks.L2CarliniWagnerAttack(stepsize=0.1, **hp)(
        fmodel, x.to(zoo_cnn.device), y.to(zoo_cnn.device), epsilons=None)
    found = raw.flatten(1).abs().amax(dim=1) > 0
    fb_success = (zoo_cnn.predict(raw) != y.to(zoo_cnn.device)) & found
    fb_l2 = (raw - x.to(raw.device)).flatten(1).norm(dim=1)
    assert bool(ours.success.any())
    assert torch.equal(ours.success.cpu(), fb_success.cpu())
    assert torch.allclose(ours.l2[ours.success].cpu(), fb_l2[fb_success].cpu(), rtol=1e-3)

def test_targeted_cw_reaches_targets(zoo_cnn: robust.Classifier, mnist500: Any) -> None:
    x, y = correct_points(zoo_cnn, mnist500, 8)
    targets = (y + 1) % 10
    # Background pixels at 0 or 1 start where tanh is flat: a larger lr moves them within 50 steps.
    cw = robust.create_attack("cw", steps=50, binary_search_steps=4, lr=0.1, initial_const=1.0)
    res = cw(zoo_cnn, x, targets, targeted=True)
    assert bool(res.success.all())
    assert torch.equal(zoo_cnn.predict(res.x_adv).cpu(), targets)
    assert float(res.l2.min()) > 0


def test_unbroken_sample_comes_back_unchanged(zoo_cnn: robust.Classifier, mnist500: Any) -> None:
    x, y = correct_points(zoo_cnn, mnist500, 4)
    cw = robust.create_attack("cw", steps=1, binary_search_steps=1, initial_const=1e-6)
    res = cw(zoo_cnn, x, (y + 1) % 10, targeted=True)
    assert not bool(res.success.any())
    assert torch.equal(res.x_adv.cpu(), x)
    assert float(res.l2.max()) == 0.0


def test_confidence_leaves_a_margin(linear_oracle: Any) -> None:
    o = linear_oracle
    x, y = o.x[:8], o.y[:8]
    kappa = 0.5
    cw = robust.create_attack("cw", steps=200, binary_search_steps=4, initial_const=1.0, confidence=kappa)
    res = cw(o.model, x, y)
    assert bool(res.success.all())
    with torch.no_grad():
        logits = o.model(res.x_adv)
    own = logits.gather(1, y[:, None].to(logits.device)).squeeze(1)
    other = logits.scatter(1, y[:, None].to(logits.device), float("-inf")).amax(dim=1)
    assert float((other - own).min()) >= kappa * (1 - 1e-4)
    assert bool((res.l2.cpu() > o.min_distance("l2")[:8]).all()), "a margin of kappa lies beyond the boundary"


BAD = [{"steps": 0}, {"binary_search_steps": 0}, {"lr": 0.0}, {"initial_const": -1.0}, {"confidence": -0.5},
       {"abort_early": "yes"}, {"norm": "linf"}]


@pytest.mark.parametrize("bad", BAD)
def test_bad_hyperparameters_are_named(bad: dict[str, Any], digits_model: robust.Classifier, digits: Any) -> None:
    key = next(iter(bad))
    with pytest.raises(robust.RobustError, match=key):
        robust.create_attack("cw", **bad)(digits_model, digits.x[:4], digits.y[:4])
