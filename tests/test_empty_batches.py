"""No attack, check, defense or detector ever calls the model on zero samples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner

import robust
from robust.cli import main
from robust.evaluation.checks import CHECKS, run_checks
from robust.testing.conformance import EmptyBatchError, RefusesEmptyBatch

CIFAR_STYLE = "tests.fixtures.nets:make_cifar_style_net"
STATUSES = {"pass", "warn", "fail"}


@pytest.fixture(scope="module")
def model(digits_model: robust.Classifier) -> robust.Classifier:
    """The seeded digits MLP, whose first layer raises EmptyBatchError on an empty batch."""
    assert isinstance(digits_model.module[0], RefusesEmptyBatch)
    return digits_model


def correct_points(model: robust.Classifier, digits: Any, n: int = 40) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = digits.x[:n], digits.y[:n]
    keep = model.predict(x).cpu() == y
    return x[keep], y[keep]


def test_canary_the_refusing_models_raise_on_an_empty_batch(model: robust.Classifier, digits: Any) -> None:
    assert model(digits.x[:4]).shape == (4, 10)
    with pytest.raises(EmptyBatchError, match="empty batch"):
        model(digits.x[:0])
    with pytest.raises(EmptyBatchError):
        robust.testing.small_digits_model()(digits.x[:0])


def test_canary_the_cifar_style_net_raises_on_an_empty_batch(mnist500: Any) -> None:
    net = robust.load_model(CIFAR_STYLE, device="cpu")
    assert net(mnist500.x[:3]).shape == (3, 10)
    with pytest.raises(RuntimeError, match="cannot reshape"):
        net(mnist500.x[:0])


def evaluate_on_the_command_line(tmp_path: Path, *extra: str) -> dict[str, Any]:
    out = tmp_path / "run"
    outcome = CliRunner().invoke(main, [
        "evaluate", "--model", CIFAR_STYLE, "--attack", "fgsm", "--attack", "pgd:restarts=3,steps=5",
        "--eps", "0.5", "--n", "16", "--device", "cpu", "--out", str(out), *extra])
    assert outcome.exit_code == 0, outcome.output
    data: dict[str, Any] = json.loads((out / "result.json").read_text())
    return data


@pytest.mark.parametrize("defense", [None, "jpeg", "spatial-smoothing"])
def test_cli_evaluation_where_every_point_falls(tmp_path: Path, defense: str | None) -> None:
    data = evaluate_on_the_command_line(tmp_path, *(["--defense", defense] if defense else []))
    assert data["model"] == (f"{CIFAR_STYLE}+{defense}" if defense else CIFAR_STYLE)
    assert data["clean_accuracy"] > 0, "some points must be correct for the attacks and checks to run at all"
    assert data["robust_accuracy"] == 0
    correct = [s for s in data["samples"] if s["label"] == s["clean_prediction"]]
    assert correct and all(s["broken_by"] is not None for s in correct)
    assert data["attacks"][0]["attacked"] == len(correct)
    assert data["attacks"][1]["params"]["restarts"] == 3
    assert [c["id"] for c in data["checks"]] != ["no-points"]
    assert len(data["checks"]) == len(CHECKS)
    assert all(c["status"] in STATUSES for c in data["checks"]), data["checks"]
    assert [d["name"] for d in data["defenses"]] == ([defense] if defense else [])


def test_run_checks_gives_every_verdict_where_every_point_falls(model: robust.Classifier, digits: Any) -> None:
    x, y = correct_points(model, digits)
    eps = 1.0
    pgd = robust.create_attack("pgd", steps=5, restarts=3)
    assert bool(pgd(model, x, y, eps=eps).success.all()), "every point must fall at this eps"
    attacks = [robust.create_attack("fgsm"), pgd]
    found = run_checks(model, x, y, eps=eps, norm="linf", seed=0, attacks=attacks, broken_by=["fgsm"] * len(x))
    ids = [c["id"] for c in found]
    assert len(set(ids)) == len(found) == len(CHECKS) == 9 and "no-points" not in ids
    assert all(c["status"] in STATUSES for c in found), found


def test_run_checks_on_no_points_warns_without_calling_the_model(model: robust.Classifier, digits: Any) -> None:
    found = run_checks(model, digits.x[:0], digits.y[:0], eps=0.3, norm="linf", seed=0, attacks=[], broken_by=[])
    assert [(c["id"], c["status"]) for c in found] == [("no-points", "warn")]


def test_checks_where_no_point_can_fall(model: robust.Classifier, digits: Any) -> None:
    result = robust.evaluate(model, (digits.x[:20], digits.y[:20]), ["pgd:steps=5"], eps=0.0, checks=True)
    assert result.robust_accuracy == result.clean_accuracy > 0
    assert len(result.checks) == len(CHECKS)
    assert all(c["status"] in STATUSES for c in result.checks), result.checks


@pytest.mark.parametrize("cascade", [True, False])
def test_minimization_attacks_where_every_point_falls(model: robust.Classifier, digits: Any, cascade: bool) -> None:
    data = (digits.x[:40], digits.y[:40])
    attacks = ["deepfool:steps=10", "cw:steps=20,binary_search_steps=2", "boundary:max_queries=200"]
    result = robust.evaluate(model, data, attacks, eps=8.0, norm="l2", cascade=cascade, checks=True)
    correct = round(result.clean_accuracy * 40)
    assert correct > 0
    assert result.robust_accuracy == 0
    assert len(result.checks) == len(CHECKS)
    if cascade:
        assert result.attacks[0].attacked == correct
        for before, after in zip(result.attacks, result.attacks[1:]):
            assert after.attacked == before.attacked - before.broken
    else:
        assert [a.attacked for a in result.attacks] == [correct] * 3


def test_every_attack_after_the_first_sees_an_empty_pool(model: robust.Classifier, digits: Any) -> None:
    data = (digits.x[:40], digits.y[:40])
    result = robust.evaluate(model, data, ["pgd:restarts=3,steps=5", "fgsm", "deepfool", "boundary:max_queries=100"],
                             eps=[0.5, 1.0], checks=True)
    assert result.robust_accuracy == 0 and result.attacks[0].broken == result.attacks[0].attacked > 0
    assert [a.attacked for a in result.attacks[1:]] == [0, 0, 0]
    assert [a.forward_passes for a in result.attacks[1:]] == [0, 0, 0]
    assert result.sweep is not None and len(result.sweep) == 2


def test_labels_the_model_always_misses(model: robust.Classifier, digits: Any) -> None:
    x = digits.x[:30]
    wrong = (model.predict(x).cpu() + 1) % 10
    result = robust.evaluate(model, (x, wrong), ["fgsm", "pgd:restarts=3,steps=5", "deepfool"], eps=0.3, checks=True)
    assert result.clean_accuracy == 0 and result.robust_accuracy == 0
    assert [a.attacked for a in result.attacks] == [0, 0, 0]
    assert [c["id"] for c in result.checks] == ["no-points"]
    assert result.examples == []


@pytest.mark.parametrize("name", ["jpeg", "spatial-smoothing", "feature-squeezing"])
def test_defended_model_where_every_point_falls(model: robust.Classifier, digits: Any, name: str) -> None:
    defended = robust.create_defense(name, **({"bit_depth": 4} if name == "feature-squeezing" else {})).wrap(model)
    data = (digits.x[:32], digits.y[:32])
    result = robust.evaluate(defended, data, ["fgsm", "pgd:restarts=3,steps=5"], eps=1.0, checks=True, naive=True)
    assert result.clean_accuracy > 0 and result.robust_accuracy == 0
    assert result.naive is not None and result.naive["robust_accuracy"] <= result.clean_accuracy
    assert len(result.checks) == len(CHECKS)


@pytest.fixture(scope="module")
def detector(model: robust.Classifier) -> Any:
    found = robust.create_defense("feature-squeezing", bit_depth=4).detector(model)
    found.calibrate(robust.load_dataset("digits", split="train", n=200).x)
    return found


@pytest.mark.parametrize(("eps", "all_broken"), [(0.0, False), (1.0, True)])
def test_detector_path(model: robust.Classifier, digits: Any, detector: Any, eps: float, all_broken: bool) -> None:
    data = (digits.x[:32], digits.y[:32])
    result = robust.evaluate(model, data, ["fgsm", "pgd:restarts=3,steps=5"], eps=eps, detector=detector)
    found = result.detection
    correct = round(result.clean_accuracy * 32)
    assert found is not None and found["clean_n"] == correct > 0
    if all_broken:
        assert result.robust_accuracy == 0 and found["adversarial_n"] == correct
        assert found["detection_rate"] is not None
    else:
        assert result.robust_accuracy == result.clean_accuracy
        assert found["adversarial_n"] == 0 and found["detection_rate"] is None


def test_detector_with_no_correct_point(model: robust.Classifier, digits: Any, detector: Any) -> None:
    x = digits.x[:24]
    wrong = (model.predict(x).cpu() + 1) % 10
    result = robust.evaluate(model, (x, wrong), ["pgd:steps=5"], eps=0.3, detector=detector)
    assert result.detection is not None
    assert result.detection["clean_n"] == 0 and result.detection["false_positive_rate"] is None
    assert result.detection["adversarial_n"] == 0
