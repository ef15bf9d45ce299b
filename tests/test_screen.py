"""The hopeless-point screen of the later standard components (A3's idea): what it leaves out, and what it costs."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import robust
from robust.attacks.screen import hopeless, scores
from robust.losses import dlr
from robust.testing import small_digits_model


def test_at_eps_zero_it_leaves_out_the_points_whose_clean_dlr_is_below_the_threshold(
        digits_model: robust.Classifier, digits: Any) -> None:
    x, y = digits.x[:200], digits.y[:200]
    with torch.no_grad():
        clean = dlr(digits_model(x).float(), y)
    for threshold in (0.2, 0.5, 0.8):
        skip = hopeless(digits_model, x, y, 0.0, "linf", threshold)
        assert torch.equal(skip, clean < -threshold)
    assert 0 < int((clean < -0.5).sum()) < len(x), "the oracle must split the points"


@pytest.mark.parametrize("norm,eps", [("linf", 0.1), ("l2", 0.5)])
def test_the_dlr_bounds_fix_the_extremes(norm: str, eps: float, digits_model: robust.Classifier, digits: Any) -> None:
    x, y = digits.x[:128], digits.y[:128]
    # the DLR loss of a correctly classified point lies in [-1, 0): a threshold of 1 keeps every point,
    # a threshold of 0 leaves out exactly those the 20-step run did not misclassify
    assert not hopeless(digits_model, x, y, eps, norm, 1.0).any()
    none_left = hopeless(digits_model, x, y, eps, norm, 0.0)
    kept = hopeless(digits_model, x, y, eps, norm, 0.6)
    assert bool((kept <= none_left).all()), "a lower threshold leaves out a superset"
    assert 0 < int(none_left.sum()) < len(x)
    assert not hopeless(digits_model, x, y, eps, norm, None).any()


def test_a_model_never_called_before_is_screened(digits: Any) -> None:
    fresh = robust.Classifier(small_digits_model().module)  # its number of classes is not known yet
    x, y = digits.x[:64], digits.y[:64]
    assert hopeless(fresh, x, y, 0.0, "linf", 0.5).any()


def test_two_classes_keep_every_point() -> None:
    model = robust.Classifier(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2)))
    x = torch.rand(8, 1, 2, 2)
    assert not hopeless(model, x, torch.zeros(8, dtype=torch.long), 0.1, "linf", 0.0).any()


def test_square_skips_the_screened_points_at_one_query_and_breaks_as_many(
        digits_model: robust.Classifier, digits: Any) -> None:
    x, y = digits.x[:160], digits.y[:160]
    eps, budget = 0.03, 200
    full = robust.create_attack("square", queries=budget)(digits_model, x, y, eps=eps, seed=0)
    screened = robust.create_attack("square", queries=budget, screen=0.6)(digits_model, x, y, eps=eps, seed=0)
    assert full.queries is not None and screened.queries is not None
    left_out = (screened.queries == 1) & ~screened.success
    assert int(left_out.sum()) > 0, "the screen must leave some points out here"
    assert torch.equal(screened.x_adv[left_out], x[left_out].to(screened.x_adv)), "a skipped point comes back as x"
    assert int(screened.queries.sum()) < int(full.queries.sum())
    assert screened.backward_samples <= 21 * len(x) and full.backward_samples == 0
    # points worth no search: the screen keeps nearly every point the full search breaks
    assert int(screened.success.sum()) >= int(full.success.sum()) - 3


def test_a_point_s_score_does_not_depend_on_its_batch(digits_model: robust.Classifier, digits: Any) -> None:
    """The start is drawn from the point's own bytes: the same score alone, in any batch, in any order."""
    x, y = digits.x[:48], digits.y[:48]
    together = scores(digits_model, x, y, 0.1, "linf")
    order = torch.randperm(48, generator=torch.Generator().manual_seed(1))
    shuffled = scores(digits_model, x[order], y[order], 0.1, "linf")
    alone = torch.stack([scores(digits_model, x[i:i + 1], y[i:i + 1], 0.1, "linf")[0] for i in range(5)])
    assert torch.allclose(shuffled, together[order.to(together.device)], atol=1e-5)
    assert torch.allclose(alone, together[:5], atol=1e-5)


def test_an_evaluation_screens_each_point_once(digits: Any) -> None:
    """APGD-CE's second restart, APGD-T, FAB-T and Square share the scores through the evaluation's memo."""
    counted = robust.Classifier(small_digits_model().module)
    x, y = digits.x[:64], digits.y[:64]
    result = robust.evaluate(counted, (x, y), "standard:steps=5,targets=2,queries=30", eps=0.05)
    screened = [a for a in result.attacks if a.name != "apgd"]
    assert screened[0].backward_samples >= 21 * screened[0].attacked * 0.5, "APGD-T paid for the screen"
    assert screened[-1].backward_samples == 0, "Square found every score in the memo: no gradient pass"
    assert counted.memo is None, "the memo lives for one evaluation"
