"""FGSM and PGD: effectiveness on the zoo, agreement with Foolbox, and the oracle."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import robust


def correct_points(model: robust.Classifier, data: Any) -> tuple[torch.Tensor, torch.Tensor]:
    keep = model.predict(data.x).cpu() == data.y
    return data.x[keep], data.y[keep]


@pytest.mark.cuda
def test_pgd_breaks_zoo_resnet(zoo_resnet: robust.Classifier, mnist500: Any) -> None:
    result = robust.evaluate(zoo_resnet, (mnist500.x, mnist500.y), ["pgd"], eps=0.3)
    assert result.clean_accuracy >= 0.985
    assert result.robust_accuracy <= 0.02


@pytest.mark.cuda
def test_fgsm_weaker_than_pgd(zoo_resnet: robust.Classifier, mnist500: Any) -> None:
    x, y = mnist500.x[:200], mnist500.y[:200]
    fgsm = robust.create_attack("fgsm")(zoo_resnet, x, y, eps=0.1)
    pgd = robust.create_attack("pgd", steps=20)(zoo_resnet, x, y, eps=0.1)
    assert int(pgd.success.sum()) > int(fgsm.success.sum())
    assert bool((fgsm.success & ~pgd.success).sum() <= 2)


def test_pgd_agrees_with_foolbox(zoo_cnn: robust.Classifier, mnist500: Any) -> None:
    foolbox = pytest.importorskip("foolbox")
    x, y = mnist500.x[:200], mnist500.y[:200]
    eps, steps, step = 0.1, 20, 0.01
    ours = robust.create_attack("pgd", steps=steps, step_size=step, random_start=False)(zoo_cnn, x, y, eps=eps)
    fmodel = foolbox.PyTorchModel(zoo_cnn.module.eval(), bounds=(0, 1))
    _, clipped, _ = foolbox.attacks.LinfPGD(steps=steps, abs_stepsize=step, random_start=False)(fmodel, x, y, epsilons=eps)
    assert float((clipped - x).abs().max()) <= eps + 1e-6
    fb_robust = float((zoo_cnn.predict(clipped).cpu() == y).float().mean())
    our_robust = float((~ours.success.cpu() & (zoo_cnn.predict(x).cpu() == y)).float().mean())
    assert our_robust <= fb_robust + 0.01, (our_robust, fb_robust)


@pytest.mark.cuda
def test_l2_pgd_matches_linear_oracle(linear_oracle: Any) -> None:
    """A point is broken at L2 eps exactly when its minimal distance is below eps."""
    o = linear_oracle
    dist = o.min_distance("l2")
    eps = float(dist.median())
    res = robust.create_attack("pgd", norm="l2", steps=50, random_start=False, loss="margin")(o.model, o.x, o.y, eps=eps)
    clear = (dist - eps).abs() > 0.02 * eps  # leave out points within 2% of the boundary
    assert torch.equal(res.success.cpu()[clear], (dist < eps)[clear])
    assert float(res.l2.max()) <= eps * (1 + 1e-5)


@pytest.mark.cuda
def test_linf_pgd_matches_linear_oracle(linear_oracle: Any) -> None:
    o = linear_oracle
    dist = o.min_distance("linf")
    eps = float(dist.median())
    res = robust.create_attack("pgd", steps=50, random_start=False, loss="margin")(o.model, o.x, o.y, eps=eps)
    clear = (dist - eps).abs() > 0.02 * eps
    assert torch.equal(res.success.cpu()[clear], (dist < eps)[clear])


@pytest.mark.cuda
def test_targeted_pgd_reaches_targets(zoo_cnn: robust.Classifier, mnist500: Any) -> None:
    x, y = correct_points(zoo_cnn, mnist500)
    x, targets = x[:64], (y[:64] + 1) % 10
    res = robust.create_attack("pgd", steps=40, loss="margin")(zoo_cnn, x, targets, eps=0.3, targeted=True)
    assert float(res.success.float().mean()) >= 0.95
    hits = res.success.cpu()
    assert torch.equal(zoo_cnn.predict(res.x_adv).cpu()[hits], targets[hits])


def test_restarts_never_hurt(zoo_cnn: robust.Classifier, mnist500: Any) -> None:
    x, y = correct_points(zoo_cnn, mnist500)
    x, y = x[:128], y[:128]
    one = robust.create_attack("pgd", steps=5, restarts=1)(zoo_cnn, x, y, eps=0.1, seed=1)
    three = robust.create_attack("pgd", steps=5, restarts=3)(zoo_cnn, x, y, eps=0.1, seed=1)
    assert int(three.success.sum()) >= int(one.success.sum())


@pytest.mark.cuda
def test_early_exit_saves_passes(zoo_cnn: robust.Classifier, mnist500: Any) -> None:
    """Fooled samples leave the batch: every backward pass still runs, but on fewer samples."""
    x, y = mnist500.x[:64], mnist500.y[:64]
    res = robust.create_attack("pgd", steps=40)(zoo_cnn, x, y, eps=0.3)
    assert bool(res.success.all())
    assert res.backward_passes < 40, "all samples are fooled early, so the loop must stop early"


@pytest.mark.parametrize("bad", [{"steps": 0}, {"restarts": 0}, {"loss": "hinge"}, {"step_size": -1.0}, {"norm": "l1"}])
def test_bad_hyperparameters_are_named(bad: dict[str, Any], digits_model: robust.Classifier, digits: Any) -> None:
    key = next(iter(bad))
    with pytest.raises(robust.RobustError, match=key):
        robust.create_attack("pgd", **bad)(digits_model, digits.x[:4], digits.y[:4], eps=0.1)


def test_pgd_needs_eps(digits_model: robust.Classifier, digits: Any) -> None:
    with pytest.raises(robust.RobustError, match="needs eps"):
        robust.create_attack("pgd")(digits_model, digits.x[:4], digits.y[:4])
