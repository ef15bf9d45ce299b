"""evaluate(): the cascade, the worst case, input forms, and the JSON round trip."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from torch.utils.data import DataLoader, TensorDataset

import robust


@pytest.mark.cuda
def test_cascade_attacks_only_points_still_robust(zoo_cnn: robust.Classifier, mnist500: Any) -> None:
    x, y = mnist500.x[:200], mnist500.y[:200]
    result = robust.evaluate(zoo_cnn, (x, y), ["fgsm", "pgd"], eps=0.15)
    fgsm, pgd = result.attacks
    clean_correct = round(result.clean_accuracy * 200)
    assert fgsm.attacked == clean_correct
    assert pgd.attacked == fgsm.attacked - fgsm.broken
    robust_count = sum(1 for s in result.samples if s["label"] == s["clean_prediction"] and s["broken_by"] is None)
    assert result.robust_accuracy == pytest.approx(robust_count / 200)
    assert pgd.robust_accuracy == pytest.approx(result.robust_accuracy)
    assert fgsm.robust_accuracy >= pgd.robust_accuracy


def robust_points(result: Any) -> set[int]:
    return {s["index"] for s in result.samples if s["label"] == s["clean_prediction"] and s["broken_by"] is None}


def correct_points(result: Any) -> set[int]:
    return {s["index"] for s in result.samples if s["label"] == s["clean_prediction"]}


@pytest.mark.cuda
def test_worst_case_equals_union_of_per_attack_successes(zoo_cnn: robust.Classifier, mnist500: Any) -> None:
    """Per sample: robust under both attacks exactly where robust under each alone (deterministic attacks)."""
    x, y = mnist500.x[:200], mnist500.y[:200]
    attacks = [robust.create_attack("fgsm"), robust.create_attack("pgd", steps=10, random_start=False)]
    alone = [robust.evaluate(zoo_cnn, (x, y), [a], eps=0.15) for a in attacks]
    broken = [correct_points(r) - robust_points(r) for r in alone]
    assert broken[0] and broken[1] - broken[0], "each attack must break points the other misses for this to mean much"
    for result in (robust.evaluate(zoo_cnn, (x, y), attacks, eps=0.15, cascade=False),
                   robust.evaluate(zoo_cnn, (x, y), attacks, eps=0.15)):
        assert robust_points(result) == correct_points(result) - (broken[0] | broken[1])
        assert result.robust_accuracy == pytest.approx(len(robust_points(result)) / 200)
    side_by_side = robust.evaluate(zoo_cnn, (x, y), attacks, eps=0.15, cascade=False)
    assert [a.broken for a in side_by_side.attacks] == [len(b) for b in broken]


def test_input_forms_agree(digits_model: robust.Classifier, digits: Any) -> None:
    x, y = digits.x[:100], digits.y[:100]
    forms = [(x, y), TensorDataset(x, y), DataLoader(TensorDataset(x, y), batch_size=33)]
    results = [robust.evaluate(digits_model, data, "pgd", eps=0.1, batch_size=40) for data in forms]
    assert len({r.robust_accuracy for r in results}) == 1
    assert len({r.clean_accuracy for r in results}) == 1


def test_same_seed_same_result(digits_model: robust.Classifier, digits: Any) -> None:
    runs = [robust.evaluate(digits_model, (digits.x, digits.y), ["pgd"], eps=0.1, seed=5).samples for _ in range(2)]
    assert runs[0] == runs[1]


def test_named_model_and_dataset() -> None:
    result = robust.evaluate("cnn", "mnist", [], eps=0.0)
    assert (result.model, result.dataset, result.n) == ("cnn", "mnist", 10000)
    assert result.robust_accuracy == result.clean_accuracy >= 0.985


def test_json_round_trip(tmp_path: Path, digits_model: robust.Classifier, digits: Any) -> None:
    result = robust.evaluate(digits_model, (digits.x[:50], digits.y[:50]), ["fgsm", "pgd"], eps=0.1)
    path = result.to_json(tmp_path / "result.json")
    data = json.loads(path.read_text())
    for key in ("schema", "model", "dataset", "n", "eps", "norm", "seed", "clean_accuracy", "robust_accuracy",
                "attacks", "samples", "checks", "environment"):
        assert key in data, key
    for key in ("name", "framework", "params", "robust_accuracy", "success_rate", "median_l2", "median_linf",
                "seconds", "forward_passes", "backward_passes"):
        assert key in data["attacks"][0], key
    assert data["schema"] == 1 and data["attacks"][0]["framework"] == "robust"
    assert {"python", "torch", "robust", "device", "command"} <= set(data["environment"])
    loaded = robust.load_result(path)
    assert loaded == result


@pytest.mark.cuda
def test_l2_evaluation(digits_model: robust.Classifier, digits: Any) -> None:
    result = robust.evaluate(digits_model, (digits.x[:64], digits.y[:64]), ["pgd"], eps=1.0, norm="l2")
    assert result.attacks[0].params["norm"] == "l2"
    broken = [s for s in result.samples if s["broken_by"]]
    assert broken and all(s["l2"] <= 1.0 + 1e-5 for s in broken)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"eps": -0.1}, "eps must be"),
    ({"eps": 0.1, "norm": "l1"}, "norm must be"),
    ({"eps": 0.1, "batch_size": 0}, "batch size"),
])
def test_bad_settings(kwargs: dict[str, Any], message: str, digits_model: robust.Classifier, digits: Any) -> None:
    with pytest.raises(robust.RobustError, match=message):
        robust.evaluate(digits_model, (digits.x[:8], digits.y[:8]), ["pgd"], **kwargs)


def test_bad_data(digits_model: robust.Classifier, digits: Any) -> None:
    with pytest.raises(robust.RobustError, match="empty"):
        robust.evaluate(digits_model, (digits.x[:0], digits.y[:0]), ["pgd"], eps=0.1)
    with pytest.raises(robust.RobustError, match="labels lie"):
        robust.evaluate(digits_model, (digits.x[:8], digits.y[:8] + 10), ["pgd"], eps=0.1)
    with pytest.raises(robust.RobustError, match="outside the model's bounds"):
        robust.evaluate(digits_model, (digits.x[:8] + 2, digits.y[:8]), ["pgd"], eps=0.1)
    with pytest.raises(robust.RobustError, match="configured for norm 'l2'"):
        robust.evaluate(digits_model, (digits.x[:8], digits.y[:8]), [robust.create_attack("pgd", norm="l2")], eps=0.1)
    with pytest.raises(robust.RobustError, match="unknown attack"):
        robust.evaluate(digits_model, (digits.x[:8], digits.y[:8]), ["pgx"], eps=0.1)


def test_minimization_attacks_count_only_within_eps(zoo_cnn: robust.Classifier, mnist500: Any) -> None:
    x, y = mnist500.x[:64], mnist500.y[:64]
    eps = 1.5
    result = robust.evaluate(zoo_cnn, (x, y), ["deepfool"], eps=eps, norm="l2")
    distances = [s["l2"] for s in result.samples if s["label"] == s["clean_prediction"]]
    assert all(d is not None for d in distances), "DeepFool breaks every point of a standard model at some distance"
    beyond = sum(d > eps for d in distances)
    assert beyond > 0, "some minimal distances must lie beyond eps for this test to mean anything"
    assert result.robust_accuracy == pytest.approx(beyond / 64)
    assert all(s["broken_by"] == ("deepfool" if s["l2"] is not None and s["l2"] <= eps else None)
               for s in result.samples if s["label"] == s["clean_prediction"])
    # robust accuracy at a smaller eps follows from the recorded distances
    smaller = robust.evaluate(zoo_cnn, (x, y), ["deepfool"], eps=1.0, norm="l2")
    assert smaller.robust_accuracy == pytest.approx(sum(d > 1.0 for d in distances) / 64)
