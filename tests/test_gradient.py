"""The gradient base: descend's trace and early exit, random starts, restarts, FGSM/PGD and adversarial training."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import robust
from robust.gradient import GradientAttack, SteepestAscent, descend, random_start
from robust.losses import ce
from robust.testing.conformance import RefusesEmptyBatch


class Recorder(nn.Module):
    """Passes through to ``inner`` and records the size of every batch it sees."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.sizes: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append(int(x.shape[0]))
        return self.inner(x)


def recorded(digits_model: robust.Classifier) -> tuple[robust.Classifier, Recorder]:
    recorder = Recorder(digits_model.module)
    model = robust.Classifier(recorder, device=digits_model.device)
    model(torch.zeros(1, 1, 8, 8, device=digits_model.device))  # the first pass notes the number of classes
    recorder.sizes.clear()
    return model, recorder


def batch(digits: Any, n: int = 32, start: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    return digits.x[start:start + n], digits.y[start:start + n]


def correct_points(model: robust.Classifier, digits: Any, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    keep = model.predict(digits.x).cpu() == digits.y
    return digits.x[keep][:n], digits.y[keep][:n]


def wrong_labels(model: robust.Classifier, x: torch.Tensor) -> torch.Tensor:
    return (model.predict(x).cpu() + 1) % 10


def ce_of(model: robust.Classifier, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return F.cross_entropy(model.module(x), y, reduction="none")


def hand_pgd(module: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, step: float,
             steps: int) -> list[torch.Tensor]:
    """Iterates of signed-gradient ascent of the cross-entropy, projected onto the Linf ball and [0, 1]."""
    iterates = [x]
    cur = x
    for _ in range(steps):
        cur = cur.detach().requires_grad_(True)
        grad, = torch.autograd.grad(F.cross_entropy(module(cur), y, reduction="none").sum(), cur)
        cur = (x + (cur + step * grad.sign() - x).clamp(-eps, eps)).clamp(0, 1).detach()
        iterates.append(cur)
    return iterates


def test_trace_is_the_running_best_loss(digits_model: robust.Classifier, digits: Any) -> None:
    x, y = batch(digits, 16)
    eps, step, steps = 0.1, 0.03, 5
    before = (digits_model.counter.forward, digits_model.counter.backward)
    found = descend(digits_model, y, x, SteepestAscent(x, eps, "linf", step, (0.0, 1.0)), steps=steps, loss=ce,
                    early_exit=False, trace=True)
    assert found.trace is not None
    assert found.trace.shape == (steps + 1, 16)
    assert bool((found.trace[1:] >= found.trace[:-1]).all())
    assert bool((found.trace[-1] > found.trace[0]).all())
    assert not bool(found.fooled.any())  # without early exit nothing is marked
    iterates = hand_pgd(digits_model.module, x, y, eps, step, steps)
    losses = torch.stack([ce_of(digits_model, it, y) for it in iterates])
    assert torch.allclose(found.trace, losses.cummax(dim=0).values, atol=1e-5)
    assert torch.allclose(found.x_adv, iterates[-1], atol=1e-6)
    assert (digits_model.counter.forward - before[0], digits_model.counter.backward - before[1]) == (steps + 1,) * 2


def test_without_trace_descend_makes_one_pass_per_step(digits_model: robust.Classifier, digits: Any) -> None:
    x, y = batch(digits, 8)
    before = digits_model.counter.forward
    found = descend(digits_model, y, x, SteepestAscent(x, 0.1, "linf", 0.03, (0.0, 1.0)), steps=4, loss=ce,
                    early_exit=False)
    assert found.trace is None
    assert digits_model.counter.forward - before == 4
    assert torch.allclose(found.x_adv, hand_pgd(digits_model.module, x, y, 0.1, 0.03, 4)[-1], atol=1e-6)


def test_early_exit_keeps_the_start_and_shrinks_the_batch(digits_model: robust.Classifier, digits: Any) -> None:
    model, recorder = recorded(digits_model)
    x, y = correct_points(digits_model, digits, 16)
    y = y.clone()
    y[:4] = wrong_labels(digits_model, x[:4])  # adversarial at the start
    steps = 6
    before = model.counter.forward
    found = descend(model, y, x, SteepestAscent(x, 0.3, "linf", 0.1, (0.0, 1.0)), steps=steps, loss=ce, trace=True)
    sizes = recorder.sizes
    assert sizes[0] == 16
    assert all(size <= 12 for size in sizes[1:])
    assert sizes == sorted(sizes, reverse=True)
    assert sizes[-1] < 12  # points fooled on the way left too
    assert model.counter.forward - before == len(sizes)
    assert bool(found.fooled[:4].all())
    assert torch.equal(found.x_adv[:4], x[:4])
    fooled = found.fooled
    assert bool((digits_model.predict(found.x_adv[fooled]).cpu() != y[fooled]).all())
    assert found.trace is not None and found.trace.shape[1] == 16
    rows = found.trace.shape[0]
    assert rows == steps + 1, "the trace has a row per step however early the points leave"
    assert bool((found.trace[1:] >= found.trace[:-1]).all())
    assert torch.equal(found.trace[:, :4], found.trace[:1, :4].expand(rows, 4))  # no loss recorded after leaving


def test_the_digits_model_refuses_empty_batches(digits_model: robust.Classifier) -> None:
    assert isinstance(digits_model.module[0], RefusesEmptyBatch)
    with pytest.raises(AssertionError, match="empty batch"):
        digits_model(torch.zeros(0, 1, 8, 8))


@pytest.mark.parametrize("random_start", [False, True])
def test_pgd_restarts_on_points_already_adversarial(digits_model: robust.Classifier, digits: Any,
                                                    random_start: bool) -> None:
    x, _ = batch(digits, 24)
    y = wrong_labels(digits_model, x)
    result = robust.create_attack("pgd", steps=5, restarts=3, random_start=random_start)(digits_model, x, y, eps=0.1)
    assert bool(result.success.all())
    if not random_start:  # every point leaves at its start after one pass
        assert torch.equal(result.x_adv, x)
        assert (result.forward_passes, result.backward_passes) == (1, 1)


def test_targeted_pgd_on_points_already_at_their_target(digits_model: robust.Classifier, digits: Any) -> None:
    x, _ = batch(digits, 24)
    targets = digits_model.predict(x).cpu()
    result = robust.create_attack("pgd", steps=5, restarts=3, random_start=False)(
        digits_model, x, targets, eps=0.1, targeted=True)
    assert bool(result.success.all())
    assert torch.equal(result.x_adv, x)


@pytest.mark.parametrize("wrong", [False, True])
@pytest.mark.parametrize("eps", [1.0, 10.0])
def test_pgd_with_the_whole_box_as_ball(digits_model: robust.Classifier, digits: Any, eps: float, wrong: bool) -> None:
    x, y = batch(digits, 24)
    y = wrong_labels(digits_model, x) if wrong else y
    result = robust.create_attack("pgd", steps=5, restarts=3)(digits_model, x, y, eps=eps)
    assert float(result.x_adv.min()) >= 0.0 and float(result.x_adv.max()) <= 1.0
    assert bool(torch.isfinite(result.x_adv).all())
    assert float(result.success.float().mean()) >= 0.9


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_fgsm_on_points_already_adversarial(digits_model: robust.Classifier, digits: Any, norm: str) -> None:
    x, _ = batch(digits, 24)
    y = wrong_labels(digits_model, x)
    result = robust.create_attack("fgsm", norm=norm)(digits_model, x, y, eps=0.2)
    assert torch.equal(result.x_adv, x)
    assert bool(result.success.all())
    assert result.forward_passes == 1


def test_random_start_linf_stays_in_the_ball_and_the_bounds(digits: Any) -> None:
    x = digits.x[:32]  # many pixels sit on the bounds 0 and 1
    eps = 0.2
    out = random_start(x, eps, "linf", (0.0, 1.0), torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert float((out - x).abs().max()) <= eps + 1e-6
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert not torch.equal(out, x)


def test_random_start_l2_stays_in_the_ball_and_the_bounds(digits: Any) -> None:
    x = digits.x[:32]
    eps = 1.5
    out = random_start(x, eps, "l2", (0.0, 1.0), torch.Generator().manual_seed(0))
    assert float((out - x).flatten(1).norm(dim=1).max()) <= eps * (1 + 1e-5)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert not torch.equal(out, x)


def test_random_start_is_uniform_in_the_linf_ball_and_in_radius_for_l2() -> None:
    x = torch.full((64, 1, 8, 8), 0.5)  # far from the bounds: nothing is clipped
    g = torch.Generator().manual_seed(1)
    delta = random_start(x, 0.1, "linf", (0.0, 1.0), g) - x
    assert abs(float(delta.abs().mean()) - 0.05) < 0.005  # |U(-eps, eps)| has mean eps / 2
    assert abs(float(delta.mean())) < 0.005
    assert float(delta.abs().max()) > 0.09
    radii = (random_start(x, 0.3, "l2", (0.0, 1.0), g) - x).flatten(1).norm(dim=1)
    assert float(radii.max()) <= 0.3 * (1 + 1e-5)
    assert abs(float(radii.mean()) - 0.15) < 0.03  # a radius uniform in [0, eps] has mean eps / 2
    assert float(radii.min()) < 0.05 * 0.3 and float(radii.max()) > 0.95 * 0.3


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_random_start_is_reproducible_from_a_generator(digits: Any, norm: str) -> None:
    x = digits.x[:8]
    a = random_start(x, 0.3, norm, (0.0, 1.0), torch.Generator().manual_seed(5))
    b = random_start(x, 0.3, norm, (0.0, 1.0), torch.Generator().manual_seed(5))
    c = random_start(x, 0.3, norm, (0.0, 1.0), torch.Generator().manual_seed(6))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_random_start_without_generator_uses_the_global_rng(digits: Any, norm: str) -> None:
    x = digits.x[:8].clone()
    copy = x.clone()
    with torch.random.fork_rng():
        torch.manual_seed(11)
        a = random_start(x, 0.3, norm, (0.0, 1.0), None)
        torch.manual_seed(11)
        b = random_start(x, 0.3, norm, (0.0, 1.0), None)
        torch.manual_seed(11)
        noise = (torch.rand(x.shape) * 2 - 1) * 0.3
        torch.manual_seed(12)
        c = random_start(x, 0.3, norm, (0.0, 1.0), None)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert torch.equal(x, copy)
    if norm == "linf":
        assert torch.allclose(a, (x + noise).clamp(0, 1))


def best_other(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return logits.scatter(1, y[:, None], float("-inf")).argmax(1)


def test_fgsm_margin_on_the_linear_oracle_is_one_signed_step(linear_oracle: Any) -> None:
    """The margin's input gradient of a linear model is W[j] - W[y], j the best other class."""
    o = linear_oracle
    eps = 0.02
    logits = o.x.flatten(1) @ o.weight.T + o.bias
    direction = (o.weight[best_other(logits, o.y)] - o.weight[o.y]).view_as(o.x)
    expected = (o.x + eps * direction.sign()).clamp(0, 1)
    result = robust.create_attack("fgsm", loss="margin")(o.model, o.x, o.y, eps=eps)
    assert torch.allclose(result.x_adv.cpu(), expected, atol=1e-6)
    judged = (expected.flatten(1) @ o.weight.T + o.bias).argmax(1) != o.y
    assert torch.equal(result.success.cpu(), judged)
    assert (result.forward_passes, result.backward_passes) == (1, 1)


def test_l2_fgm_margin_on_the_linear_oracle(linear_oracle: Any) -> None:
    o = linear_oracle
    eps = 0.5
    logits = o.x.flatten(1) @ o.weight.T + o.bias
    direction = (o.weight[best_other(logits, o.y)] - o.weight[o.y])
    step = eps * direction / direction.norm(dim=1, keepdim=True)
    expected = (o.x + step.view_as(o.x)).clamp(0, 1)
    result = robust.create_attack("fgsm", norm="l2", loss="margin")(o.model, o.x, o.y, eps=eps)
    assert torch.allclose(result.x_adv.cpu(), expected, atol=1e-6)
    assert torch.allclose(result.l2.cpu(), torch.full((len(o.x),), eps), rtol=1e-4)


def test_fgsm_is_one_signed_step_of_size_eps(digits_model: robust.Classifier, digits: Any) -> None:
    x, y = batch(digits, 64)
    eps = 0.15
    module = digits_model.module
    xg = x.clone().requires_grad_(True)
    logits = module(xg)
    grad, = torch.autograd.grad(F.cross_entropy(logits, y, reduction="none").sum(), xg)
    wrong = logits.argmax(1) != y
    assert bool(wrong.any()) and not bool(wrong.all())
    step = (x + eps * grad.sign()).clamp(0, 1)
    expected = torch.where(wrong.view(-1, 1, 1, 1), x, step)  # a point misclassified at the start stays there
    result = robust.create_attack("fgsm")(digits_model, x, y, eps=eps)
    assert torch.allclose(result.x_adv, expected, atol=1e-6)
    assert torch.equal(result.success, module(expected).argmax(1) != y)


@pytest.mark.parametrize("norm,eps", [("linf", 0.1), ("l2", 1.0)])
def test_pgd_with_one_step_of_eps_is_fgsm(digits_model: robust.Classifier, digits: Any, norm: str, eps: float) -> None:
    x, y = batch(digits, 64)
    fgsm = robust.create_attack("fgsm", norm=norm)(digits_model, x, y, eps=eps)
    one_step = robust.create_attack("pgd", norm=norm, steps=1, step_size=eps, random_start=False)
    pgd = one_step(digits_model, x, y, eps=eps)
    assert torch.equal(pgd.x_adv, fgsm.x_adv)
    assert torch.equal(pgd.success, fgsm.success)
    assert not torch.equal(fgsm.x_adv, x)


def test_restarts_skip_points_fooled_earlier(digits_model: robust.Classifier, digits: Any) -> None:
    x, y = correct_points(digits_model, digits, 48)
    n, eps = len(x), 0.12
    first = robust.create_attack("pgd", steps=1, restarts=1)(digits_model, x, y, eps=eps, seed=3)
    robust_after_one = int((~first.success).sum())
    assert 0 < robust_after_one < n
    model, recorder = recorded(digits_model)
    result = robust.create_attack("pgd", steps=1, restarts=3)(model, x, y, eps=eps, seed=3)
    sizes = recorder.sizes
    # restart 1 (n points), its check of the last iterates, restart 2 on the robust ones, ..., the final judgement
    assert sizes[0] == n and sizes[-1] == n
    assert sizes[2] == robust_after_one
    assert all(size <= robust_after_one for size in sizes[2:-1])
    assert not bool((first.success & ~result.success).any())  # what restart 1 found is kept
    assert torch.equal(result.x_adv[first.success], first.x_adv[first.success])


def test_pgd_and_fgsm_are_gradient_attacks() -> None:
    for name in ("pgd", "fgsm"):
        attack = robust.create_attack(name)
        assert isinstance(attack, GradientAttack)
        assert type(attack).__module__ == f"robust.attacks.{name}"


@pytest.mark.parametrize("method,passes", [("pgd", 3), ("fgsm-rs", 1)])
def test_adversarial_training_perturb(digits_model: robust.Classifier, digits: Any, method: str, passes: int) -> None:
    x, y = batch(digits, 64)
    eps = 0.1
    defense = robust.create_defense("adversarial-training", method=method, steps=3)
    before = digits_model.counter.forward
    with torch.random.fork_rng():
        torch.manual_seed(0)
        out = defense.perturb(digits_model, x, y, eps)
    assert digits_model.counter.forward - before == passes
    assert out.shape == x.shape
    assert float((out - x).abs().max()) <= eps + 1e-6
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert float(ce_of(digits_model, out, y).mean()) > float(ce_of(digits_model, x, y).mean()) + 0.1
    assert defense.perturb(digits_model, x, y, 0.0) is x


def test_fgsm_rs_is_one_step_of_one_and_a_quarter_eps(digits_model: robust.Classifier, digits: Any) -> None:
    x, y = batch(digits, 32)
    eps = 0.1
    defense = robust.create_defense("adversarial-training", method="fgsm-rs")
    with torch.random.fork_rng():
        torch.manual_seed(4)
        out = defense.perturb(digits_model, x, y, eps)
        torch.manual_seed(4)
        start = (x + (torch.rand(x.shape) * 2 - 1) * eps).clamp(0, 1)
    start.requires_grad_(True)
    grad, = torch.autograd.grad(F.cross_entropy(digits_model.module(start), y, reduction="none").sum(), start)
    expected = (x + (start.detach() + 1.25 * eps * grad.sign() - x).clamp(-eps, eps)).clamp(0, 1)
    assert torch.allclose(out, expected, atol=1e-6)


def test_trace_keeps_its_shape_when_every_point_leaves_at_once(digits_model: robust.Classifier, digits: Any) -> None:
    x = digits.x[:8]
    y = (digits_model.predict(x).cpu() + 1) % 10  # every point is adversarial at the start
    stepper = SteepestAscent(x, 0.1, "linf", 0.03, (0.0, 1.0))
    found = descend(digits_model, y, x, stepper, steps=5, loss=ce, trace=True)
    assert found.trace is not None and found.trace.shape == (6, 8)
    assert torch.equal(found.trace, found.trace[:1].expand(6, 8))
    assert bool(found.fooled.all()) and torch.equal(found.x_adv, x)


@pytest.mark.parametrize("spec", ["pgd:steps=20", "apgd:steps=20,loss=dlr", "apgd:steps=20,norm=l2"])
def test_halving_batches_find_what_shrinking_ones_do(spec: str, digits_model: robust.Classifier, digits: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The GPU's rule (drop finished rows once at most half are left) changes batch sizes, not results."""
    import robust.gradient as gradient

    x, y = batch(digits, n=96)
    eps = 0.1 if "l2" not in spec else 0.8
    model, recorder = recorded(digits_model)
    shrinking = robust.create_attack(spec)(model, x, y, eps=eps, seed=4)
    every = list(recorder.sizes)
    recorder.sizes.clear()
    monkeypatch.setattr(gradient, "_compact", lambda alive: 2 * int(alive.sum()) <= len(alive))
    halving = robust.create_attack(spec)(model, x, y, eps=eps, seed=4)
    assert torch.equal(halving.success, shrinking.success) and 0 < int(shrinking.success.sum()) < len(x)
    assert torch.allclose(halving.x_adv, shrinking.x_adv, atol=1e-6)
    assert len(set(recorder.sizes)) < len(set(every)), (sorted(set(recorder.sizes)), sorted(set(every)))
    sizes = sorted(set(recorder.sizes) - {len(x)}, reverse=True)
    assert all(2 * b <= a for a, b in zip([len(x)] + sizes, sizes)), "each new size is at most half the last"
