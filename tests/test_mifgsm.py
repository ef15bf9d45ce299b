"""MI-FGSM: the momentum rule, its reductions to BIM and FGSM, strength, targets and batches."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import robust
from robust.attacks.mifgsm import MomentumStepper

EPS = {"linf": 0.1, "l2": 1.5}


@pytest.fixture(scope="module")
def mnist64(mnist500: Any, zoo_cnn: robust.Classifier) -> tuple[torch.Tensor, torch.Tensor]:
    return mnist500.x[:64].to(zoo_cnn.device), mnist500.y[:64].to(zoo_cnn.device)


def test_momentum_accumulates_l1_normalized_gradients() -> None:
    x = torch.full((1, 1, 1, 3), 0.5)
    stepper = MomentumStepper(x, eps=1.0, norm="linf", step_size=0.1, decay=0.5, bounds=(0.0, 1.0))
    first = stepper.step(0, x, torch.tensor([1.0, -1.0, 0.0]).view(1, 1, 1, 3), torch.zeros(1))
    assert torch.allclose(stepper.momentum.flatten(), torch.tensor([0.5, -0.5, 0.0]))
    assert torch.allclose(first.flatten(), torch.tensor([0.6, 0.4, 0.5]))
    # a gradient 100 times larger weighs the same once divided by its L1 norm: 0.5 * m + (0, 0.01, 0.99)
    stepper.step(1, first, torch.tensor([0.0, 1.0, 99.0]).view(1, 1, 1, 3), torch.zeros(1))
    assert torch.allclose(stepper.momentum.flatten(), torch.tensor([0.25, -0.24, 0.99]))


@pytest.mark.cuda
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_without_momentum_it_is_pgd_without_random_start(norm: str, zoo_cnn: robust.Classifier,
                                                         mnist64: Any) -> None:
    x, y = mnist64
    eps = EPS[norm]
    mi = robust.create_attack("mi-fgsm", norm=norm, steps=10, decay=0.0)(zoo_cnn, x, y, eps=eps)
    bim = robust.create_attack("pgd", norm=norm, steps=10, step_size=eps / 10, random_start=False)(zoo_cnn, x, y,
                                                                                                    eps=eps)
    assert torch.equal(mi.success, bim.success)
    assert (mi.forward_passes, mi.backward_passes) == (bim.forward_passes, bim.backward_passes)
    if norm == "linf":
        assert torch.equal(mi.x_adv, bim.x_adv)
    else:  # the gradient's rescaling by its L1 norm first changes the last bits of the L2 direction
        assert torch.allclose(mi.x_adv, bim.x_adv, atol=1e-3)
    with_momentum = robust.create_attack("mi-fgsm", norm=norm, steps=10)(zoo_cnn, x, y, eps=eps)
    assert not torch.equal(with_momentum.x_adv, mi.x_adv), "decay must change the steps"


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_one_step_is_fgsm(norm: str, digits_model: robust.Classifier, digits: Any) -> None:
    x, y = digits.x[:32], digits.y[:32]
    eps = 0.05 if norm == "linf" else 0.5
    mi = robust.create_attack("mi-fgsm", norm=norm, steps=1)(digits_model, x, y, eps=eps)
    fgsm = robust.create_attack("fgsm", norm=norm)(digits_model, x, y, eps=eps)
    assert torch.allclose(mi.x_adv, fgsm.x_adv, atol=1e-6)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_breaks_at_least_as_many_points_as_fgsm(norm: str, zoo_cnn: robust.Classifier, mnist64: Any) -> None:
    x, y = mnist64
    mi = robust.create_attack("mi-fgsm", norm=norm)(zoo_cnn, x, y, eps=EPS[norm])
    fgsm = robust.create_attack("fgsm", norm=norm)(zoo_cnn, x, y, eps=EPS[norm])
    assert int(mi.success.sum()) >= int(fgsm.success.sum())
    assert int(mi.success.sum()) > int((zoo_cnn.predict(x) != y).sum()), "MI-FGSM must break some correct points"
    assert float(mi.distance(norm).max()) <= EPS[norm] * (1 + 1e-5)


def test_targeted_reaches_the_targets(digits_model: robust.Classifier, digits: Any) -> None:
    x = digits.x[:24]
    target = (digits_model.predict(x).cpu() + 1) % 10
    res = robust.create_attack("mi-fgsm", steps=20)(digits_model, x, target, eps=0.5, targeted=True)
    assert int(res.success.sum()) >= 20
    assert torch.equal(digits_model.predict(res.x_adv).cpu()[res.success.cpu()], target[res.success.cpu()])


def test_points_already_misclassified_leave_at_once(digits_model: robust.Classifier, digits: Any) -> None:
    """The digits model raises on an empty batch: a batch that is all misclassified stops after one pass."""
    x = digits.x[:24]
    wrong = (digits_model.predict(x).cpu() + 1) % 10
    res = robust.create_attack("mi-fgsm", steps=20)(digits_model, x, wrong, eps=0.3)
    assert bool(res.success.all()) and float(res.linf.max()) == 0.0
    assert res.forward_passes == 1


def test_passes_do_not_grow_with_the_batch(digits_model: robust.Classifier, digits: Any) -> None:
    x, y = digits.x[:32], digits.y[:32]
    keep = digits_model.predict(x).cpu() == y
    x, y = x[keep], y[keep]
    attack = robust.create_attack("mi-fgsm", steps=10)  # at eps 0 no point falls: every step runs
    one, many = attack(digits_model, x[:1], y[:1], eps=0.0), attack(digits_model, x, y, eps=0.0)
    assert (one.forward_passes, one.backward_passes) == (many.forward_passes, many.backward_passes) == (10, 10)
    assert many.forward_samples == 10 * len(x)


@pytest.mark.parametrize("params, message", [
    ({"steps": 0}, "steps must be"),
    ({"step_size": 0.0}, "step_size must be"),
    ({"decay": -0.5}, "decay must be"),
    ({"loss": "hinge"}, "loss must be one of ce, margin, dlr"),
    ({"random_start": True}, "unknown parameter 'random_start'"),
    ({"norm": "l1"}, "norm must be one of linf, l2"),
])
def test_rejects_bad_parameters(params: dict[str, Any], message: str, digits_model: robust.Classifier,
                                digits: Any) -> None:
    with pytest.raises(robust.RobustError, match=message):
        robust.create_attack("mi-fgsm", **params)(digits_model, digits.x[:4], digits.y[:4], eps=0.1)
