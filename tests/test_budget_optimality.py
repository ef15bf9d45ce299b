"""Budget-fair comparison (passes per point counted by the model) and AttackBench's optimality score."""

from __future__ import annotations

import math

import pytest
import torch
from click.testing import CliRunner

import robust
from robust.cli import main
from robust.comparison import compare, comparison_table
from robust.comparison import optimality as opt
from robust.comparison.budget import Watched, budgeted
from robust.report import render


def test_optimality_is_one_for_the_best_and_zero_for_nothing() -> None:
    best = torch.tensor([0.5, 1.0, 2.0])
    assert opt.score(best, best) == pytest.approx(1.0)
    assert opt.score(torch.full((3,), math.inf, dtype=torch.float64), best.double()) == pytest.approx(0.0)


def test_optimality_by_hand() -> None:
    """D = 2; best area terms (2-0.5)+(2-1)+(2-2) = 2.5; the attack's (2-1)+(2-1)+0 = 2 -> 0.8."""
    best = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    found = torch.tensor([1.0, 1.0, math.inf], dtype=torch.float64)
    assert opt.score(found, best) == pytest.approx(0.8)
    assert opt.score(found, torch.full((3,), math.inf, dtype=torch.float64)) is None


def test_optimality_table_takes_the_per_point_best_over_runs() -> None:
    a = torch.tensor([0.5, float("nan"), 1.0])
    b = torch.tensor([1.0, 2.0, 1.0])
    table = opt.table([("deepfool", "robust"), ("cw", "foolbox"), ("pgd", "art")], [a, b, b],
                      torch.tensor([True, True, True]), [True, True, False])
    assert [(r["attack"], r["framework"]) for r in table["runs"]] == [("deepfool", "robust"), ("cw", "foolbox")]
    assert table["max_distance"] == pytest.approx(2.0)
    # best = [0.5, 2.0, 1.0]: room 1.5 + 0 + 1 = 2.5; a: 1.5 + 0 + 1 = 2.5; b: 1 + 0 + 1 = 2
    assert table["runs"][0]["optimality"] == pytest.approx(1.0)
    assert table["runs"][1]["optimality"] == pytest.approx(0.8)
    curve = table["runs"][1]["curve"]
    assert curve[0] == [0.0, 1.0] and curve[-1][1] == 0.0


def test_rows_are_matched_to_their_clean_points(linear_oracle) -> None:
    x, y = linear_oracle.x[:16], linear_oracle.y[:16]
    watched = Watched(linear_oracle.model, x, y, budget=10, norm="l2", eps=None, targeted=False)
    order = torch.tensor([5, 3, 3, 12, 0])
    noisy = x[order] + 0.01 * torch.randn_like(x[order])
    assert watched.owners(noisy).tolist() == order.tolist()
    watched(noisy)
    assert watched.spent[3] == 2 and watched.spent[5] == 1 and watched.spent[1] == 0


def test_a_point_is_judged_on_passes_within_its_budget(linear_oracle) -> None:
    """One pass (the clean point) finds nothing; a large budget finds what the unbudgeted attack finds."""
    model, x, y = linear_oracle.model, linear_oracle.x[:16], linear_oracle.y[:16]
    deepfool = robust.create_attack("deepfool", norm="l2", steps=50)
    free = deepfool(model, x, y)
    tight = budgeted(deepfool, 1)(model, x, y, eps=10.0)
    assert not bool(tight.success.any())
    ample = budgeted(deepfool, 10_000)(model, x, y, eps=10.0)
    assert bool(ample.success.all())
    assert torch.allclose(ample.l2, free.l2, rtol=1e-4)


def test_budgeted_fixed_eps_attack_keeps_only_points_inside_eps(zoo_cnn, mnist500) -> None:
    x, y = mnist500.x[:32], mnist500.y[:32]
    pgd = robust.create_attack("pgd", steps=10)
    result = budgeted(pgd, 8)(zoo_cnn, x, y, eps=0.2)
    assert result.violations == 0
    assert bool((result.linf[result.success] <= 0.2 + 1e-6).all())
    full = budgeted(pgd, 1000)(zoo_cnn, x, y, eps=0.2)
    assert int(full.success.sum()) >= int(result.success.sum())


def test_compare_reports_optimality_budget_and_the_survey_grid(zoo_cnn, mnist500) -> None:
    points = mnist500.head(24)
    result = compare(zoo_cnn, points, ["deepfool:steps=20", "cw:steps=20,binary_search_steps=2"],
                     frameworks=["robust", "foolbox"], eps=1.5, norm="l2", budget=400)
    assert result.comparison is not None and result.comparison["budget"] == 400
    runs = result.comparison["optimality"]["runs"]
    assert {(r["attack"], r["framework"]) for r in runs} == {
        ("deepfool", "robust"), ("deepfool", "foolbox"), ("cw", "robust"), ("cw", "foolbox")}
    assert all(r["optimality"] is not None and 0.0 <= r["optimality"] <= 1.0 + 1e-9 for r in runs)
    assert max(r["optimality"] for r in runs) > 0.5
    assert all(a.violations == 0 for a in result.attacks)
    assert all(a.forwards_per_sample + a.backwards_per_sample <= 400 + 40 for a in result.attacks)
    text = comparison_table(result.to_dict())
    assert "optimality" in text and "within 400 passes" in text
    html = render(result.to_dict())
    assert "By attack and framework" in html and "best per point" in html


def test_cli_refuses_a_budget_below_one(tmp_path) -> None:
    out = CliRunner().invoke(main, ["compare", "--model", "cnn", "--n", "8", "--budget", "0", "--out", str(tmp_path)])
    assert out.exit_code == 2
    assert "budget" in out.output.lower()
