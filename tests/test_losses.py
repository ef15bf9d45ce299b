"""Attack losses: cross-entropy, margin, DLR and targeted DLR against closed forms."""

from __future__ import annotations

import math

import pytest
import torch

import robust
from robust.gradient import LOSS
from robust.losses import LOSSES, ce, dlr, margin, targeted_dlr

# Four samples, five classes: a correct one, a tie between y and another class, a misclassified
# one, and one whose three smallest logits tie.
ROWS = [
    [2.0, 1.0, 0.5, -1.0, 0.0],
    [0.0, 3.0, 3.0, 1.0, -2.0],
    [1.0, 4.0, 0.0, 2.0, 0.5],
    [-1.0, -1.0, -1.0, 5.0, 0.0],
]
LABELS = [0, 1, 0, 4]
TARGETS = [1, 2, 3, 3]


def logits() -> torch.Tensor:
    return torch.tensor(ROWS, dtype=torch.float64)


def labels(values: list[int] = LABELS) -> torch.Tensor:
    return torch.tensor(values)


def best_other(row: list[float], k: int) -> float:
    return max(v for i, v in enumerate(row) if i != k)


def test_ce_is_the_negative_log_softmax() -> None:
    expected = [math.log(sum(math.exp(v) for v in row)) - row[k] for row, k in zip(ROWS, LABELS)]
    assert ce(logits(), labels()).tolist() == pytest.approx(expected)
    assert ce(logits(), labels(), targeted=True).tolist() == pytest.approx([-e for e in expected])


def test_margin_is_best_other_minus_own() -> None:
    expected = [best_other(row, k) - row[k] for row, k in zip(ROWS, LABELS)]
    assert expected == [-1.0, 0.0, 3.0, 5.0]  # the closed form itself: correct, tie, misclassified twice
    assert margin(logits(), labels()).tolist() == pytest.approx(expected)
    targeted = [row[t] - best_other(row, t) for row, t in zip(ROWS, TARGETS)]
    assert margin(logits(), labels(TARGETS), targeted=True).tolist() == pytest.approx(targeted)


def test_margin_is_positive_exactly_on_misclassified_points() -> None:
    z, y = logits(), labels()
    wrong = z.argmax(1) != y
    assert wrong.tolist() == [False, False, True, True]  # the tie of sample 1 goes to the lower index, y
    assert ((margin(z, y) > 0) == wrong).tolist() == [True, True, True, True]


def test_dlr_closed_form() -> None:
    expected = []
    for row, k in zip(ROWS, LABELS):
        top = sorted(row, reverse=True)
        expected.append((best_other(row, k) - row[k]) / (top[0] - top[2]))
    assert expected == pytest.approx([-2 / 3, 0.0, 1.0, 5 / 6])
    assert dlr(logits(), labels()).tolist() == pytest.approx(expected)
    targeted = []
    for row, t in zip(ROWS, TARGETS):
        top = sorted(row, reverse=True)
        targeted.append((row[t] - best_other(row, t)) / (top[0] - top[2]))
    assert dlr(logits(), labels(TARGETS), targeted=True).tolist() == pytest.approx(targeted)


def test_dlr_stays_finite_when_the_top_logits_tie() -> None:
    z = torch.tensor([[1.0, 1.0, 1.0, 0.0], [2.0, 2.0, 2.0, 2.0]])
    out = dlr(z, torch.tensor([0, 3]))
    assert bool(torch.isfinite(out).all())
    assert out.tolist() == [0.0, 0.0]  # equal logits: a zero margin over a (guarded) zero spread


def test_targeted_dlr_closed_form() -> None:
    expected = []
    for row, k, t in zip(ROWS, LABELS, TARGETS):
        top = sorted(row, reverse=True)
        expected.append((row[t] - row[k]) / (top[0] - (top[2] + top[3]) / 2))
    assert expected == pytest.approx([-1 / 1.75, 0.0, 1 / 3.25, 5 / 6])
    assert targeted_dlr(logits(), labels(), labels(TARGETS)).tolist() == pytest.approx(expected)


def raise_logit(z: torch.Tensor, cls: list[int], by: float) -> torch.Tensor:
    out = z.clone()
    out[torch.arange(len(z)), torch.tensor(cls)] += by
    return out


@pytest.mark.parametrize("targeted", [True, False])
@pytest.mark.parametrize("name", ["ce", "margin", "dlr"])
def test_losses_grow_as_the_attack_progresses(name: str, targeted: bool) -> None:
    """Targeted: raising the target's logit a little; untargeted: lowering the label's logit a little.

    The target is neither the largest nor the third largest logit of its row, so a small raise
    keeps DLR's spread unchanged.
    """
    z = torch.tensor([[3.0, 2.0, 0.0, -1.0, -2.0], [0.5, 4.0, 1.0, 2.5, 0.0]], dtype=torch.float64)
    classes, by = ([1, 3], 0.1) if targeted else ([0, 1], -0.1)
    loss = LOSSES[name]
    before = loss(z, labels(classes), targeted)
    after = loss(raise_logit(z, classes, by), labels(classes), targeted)
    assert bool((after > before).all()), (before, after)


def test_targeted_dlr_grows_towards_the_target_and_away_from_the_label() -> None:
    z = torch.tensor([[3.0, 2.0, 0.0, -1.0, -2.0]], dtype=torch.float64)
    y, t = labels([0]), labels([1])
    base = targeted_dlr(z, y, t)
    assert float(targeted_dlr(raise_logit(z, [1], 0.1), y, t)) > float(base)
    assert float(targeted_dlr(raise_logit(z, [0], -0.1), y, t)) > float(base)


@pytest.mark.parametrize("shift,scale", [(7.0, 1.0), (0.0, 3.5), (-4.0, 0.25)])
def test_dlr_ignores_shifts_and_positive_scales(shift: float, scale: float) -> None:
    z, y, t = logits(), labels(), labels(TARGETS)
    moved = z * scale + shift
    assert dlr(moved, y).tolist() == pytest.approx(dlr(z, y).tolist())
    assert dlr(moved, t, True).tolist() == pytest.approx(dlr(z, t, True).tolist())
    assert targeted_dlr(moved, y, t).tolist() == pytest.approx(targeted_dlr(z, y, t).tolist())


def test_margin_scales_with_the_logits_and_ce_ignores_shifts() -> None:
    z, y = logits(), labels()
    assert margin(z * 3, y).tolist() == pytest.approx((3 * margin(z, y)).tolist())
    assert margin(z * 3, y).tolist() != pytest.approx(margin(z, y).tolist())
    assert margin(z + 5, y).tolist() == pytest.approx(margin(z, y).tolist())
    assert ce(z + 5, y).tolist() == pytest.approx(ce(z, y).tolist())


def test_losses_are_per_sample() -> None:
    z, y = logits(), labels()
    for name, loss in LOSSES.items():
        whole = loss(z, y, False)
        assert whole.shape == (4,), name
        alone = torch.cat([loss(z[i:i + 1], y[i:i + 1], False) for i in range(4)])
        assert torch.allclose(whole, alone), name


def test_dlr_needs_three_classes() -> None:
    two = torch.tensor([[1.0, 0.0]])
    with pytest.raises(robust.RobustError, match="DLR loss needs a model with at least 3 classes, got 2"):
        dlr(two, torch.tensor([0]))
    three = torch.tensor([[2.0, 1.0, 0.0]])
    assert dlr(three, torch.tensor([1])).tolist() == pytest.approx([(2.0 - 1.0) / (2.0 - 0.0)])


def test_targeted_dlr_needs_four_classes() -> None:
    three = torch.tensor([[2.0, 1.0, 0.0]])
    with pytest.raises(robust.RobustError, match="targeted DLR loss needs a model with at least 4 classes, got 3"):
        targeted_dlr(three, torch.tensor([0]), torch.tensor([1]))
    four = torch.tensor([[3.0, 2.0, 1.0, 0.0]])
    assert targeted_dlr(four, torch.tensor([0]), torch.tensor([1])).tolist() == pytest.approx([(2 - 3) / (3 - 0.5)])


def test_the_loss_parameter_offers_exactly_the_losses() -> None:
    assert LOSS.choices is not None
    assert set(LOSS.choices) == set(LOSSES) == {"ce", "margin", "dlr"}
