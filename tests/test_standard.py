"""The standard preset: AutoAttack's cascade as separate attacks of an evaluation, and as one attack."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from click.testing import CliRunner

import robust
from robust.cli import main

CHEAP = "standard:steps=10,targets=2,queries=100"


@pytest.mark.cuda
def test_an_evaluation_runs_the_components_as_its_cascade(digits_model: robust.Classifier, digits: Any) -> None:
    x, y = digits.x[:96], digits.y[:96]
    result = robust.evaluate(digits_model, (x, y), CHEAP, eps=0.1)
    assert [a.name for a in result.attacks] == ["apgd", "apgd-t", "fab-t", "square"]
    assert [a.params["steps"] for a in result.attacks[:3]] == [10, 10, 10]
    assert result.attacks[3].params["queries"] == 100
    attacked = [a.attacked for a in result.attacks]
    assert attacked == sorted(attacked, reverse=True), "each component sees only the points still robust"
    first = result.attacks[0]
    assert first.forward_samples >= first.attacked and first.backwards_per_sample > 0
    square = result.attacks[3]
    assert square.backwards_per_sample <= 21, "Square's queries need no gradients: only its 20-step screen does"
    assert square.forwards_per_sample > square.backwards_per_sample
    assert result.robust_accuracy == result.attacks[-1].robust_accuracy


@pytest.mark.cuda
def test_as_one_attack_it_is_its_components_in_turn(digits_model: robust.Classifier, digits: Any) -> None:
    """Called directly, the preset runs its components as a cascade, each seeded from the call's generator."""
    x, y = digits.x[:96], digits.y[:96]
    preset = robust.create_attack(CHEAP)
    whole = preset(digits_model, x, y, eps=0.1, seed=3)
    generator = torch.Generator(device=digits_model.device).manual_seed(3)
    todo, broken = torch.arange(len(x)), torch.zeros(len(x), dtype=torch.bool)
    for part in preset.components():
        seed = int(torch.randint(2**31 - 1, (1,), generator=generator, device=generator.device))
        found = part(digits_model, x[todo], y[todo], eps=0.1, seed=seed)
        hit = (found.success & (found.linf <= 0.1 * (1 + 1e-5) + 1e-7)).cpu()
        broken[todo[hit]] = True
        todo = todo[~hit]
        if todo.numel() == 0:
            break
    assert 0 < int(broken.sum()) < len(x)
    assert torch.equal(whole.success.cpu(), broken)


def test_a_norm_given_to_the_preset_reaches_every_component() -> None:
    parts = robust.create_attack("standard", norm="l2").components()
    assert {p.norm for p in parts} == {"l2"}


def test_the_command_line_runs_standard_by_default(tmp_path: Any) -> None:
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["evaluate", "--model", "cnn-at", "--n", "12", "--out", str(out), "--no-checks",
                                    "--no-progress"])
    assert res.exit_code == 0, res.output
    for name in ("apgd", "apgd-t", "fab-t", "square"):
        assert name in res.output


def test_decision_vs_gradient_covers_square(digits_model: robust.Classifier, digits: Any) -> None:
    from robust.evaluation.checks import Context, decision_beats_gradient

    x, y = digits.x[:8], digits.y[:8]
    square = robust.create_attack("square")
    ctx = Context(digits_model, x, y, 0.1, "linf", 0, [robust.create_attack("pgd"), square],
                  ["square", None, "pgd", None, None, None, None, None])
    check = decision_beats_gradient(ctx)
    assert check["status"] == "warn" and "1 point" in check["message"] and "square" in check["message"]


@pytest.mark.slow
def test_standard_matches_autoattack_on_the_zoo(mnist500: Any) -> None:
    """On 100 images of the adversarially trained CNN: every point AutoAttack breaks, ours breaks too."""
    pyautoattack = pytest.importorskip("pyautoattack")
    model = robust.load_model("cnn-at")
    x, y = mnist500.x[:100], mnist500.y[:100]
    aa = pyautoattack.AutoAttack(model.module.eval(), eps=0.3, norm="Linf", version="standard", seed=0)
    aa.verbose = False
    x_adv, _ = aa.run_standard_evaluation(x, y, batch_size=100)
    theirs = model.predict(x_adv).cpu() == y
    result = robust.evaluate(model, (x, y), "standard", eps=0.3)
    ours = torch.tensor([s["broken_by"] is None and s["clean_prediction"] == s["label"] for s in result.samples])
    assert int((ours & ~theirs).sum()) <= 1
