"""The evaluation result is frozen and records what it was given: dataset, environment, the whole run."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import robust
from robust.cli import main
from robust.result import AttackSummary, Evaluation
from robust.testing import assert_robust


@pytest.fixture(scope="module")
def result(digits_model: robust.Classifier) -> Evaluation:
    data = robust.load_dataset("digits", n=50)
    return robust.evaluate(digits_model, data, ["fgsm", "pgd:steps=5"], eps=[0.05, 0.1], command="robust <test>")


def test_fields_cannot_be_assigned(result: Evaluation) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.robust_accuracy = 1.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.dataset = "other"  # type: ignore[misc]
    assert isinstance(result.attacks[0], AttackSummary)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.attacks[0].robust_accuracy = 1.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.attacks[-1].name = "other"  # type: ignore[misc]


def test_replace_makes_a_changed_copy(result: Evaluation) -> None:
    before = result.to_dict()
    changed = dataclasses.replace(result, model="renamed", robust_accuracy=0.5)
    assert changed is not result and changed.model == "renamed" and changed.robust_accuracy == 0.5
    assert result.to_dict() == before
    assert {k: v for k, v in changed.to_dict().items() if k not in ("model", "robust_accuracy")} == \
        {k: v for k, v in before.items() if k not in ("model", "robust_accuracy")}
    summary = dataclasses.replace(result.attacks[0], name="renamed")
    assert summary.name == "renamed" and result.attacks[0].name == "fgsm"


def test_a_named_dataset_is_recorded(result: Evaluation) -> None:
    assert result.dataset == "digits" and result.n == 50


def test_tensors_and_dataset_names_are_recorded(digits_model: robust.Classifier, digits: Any) -> None:
    pair = robust.evaluate(digits_model, (digits.x[:20], digits.y[:20]), ["fgsm"], eps=0.1)
    assert pair.dataset == "tensors"
    named = robust.evaluate(digits_model, "digits", ["fgsm"], eps=0.1)
    assert named.dataset == "digits" and named.n == len(digits)


def test_assert_robust_records_the_dataset(digits_model: robust.Classifier) -> None:
    found = assert_robust(digits_model, "digits", attack="fgsm", eps=0.05, min_accuracy=0.0, n=20)
    assert found.dataset == "digits" and found.n == 20
    assert found.environment["command"].startswith("assert_robust(")


def run(*args: str) -> tuple[int, str]:
    outcome = CliRunner().invoke(main, list(args))
    return outcome.exit_code, outcome.output


def test_compare_records_the_dataset(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    code, output = run("compare", "--model", "cnn", "--attack", "fgsm", "--n", "20", "--eps", "0.1",
                       "--frameworks", "robust", "--device", "cpu", "--out", str(out))
    assert code == 0, output
    data = json.loads((out / "result.json").read_text())
    assert data["dataset"] == "mnist" and data["n"] == 20 and data["comparison"] is not None
    assert robust.load_result(out / "result.json").dataset == "mnist"


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_evaluate_records_the_precision(tmp_path: Path, precision: str) -> None:
    out = tmp_path / "run"
    code, output = run("evaluate", "--model", "cnn", "--attack", "fgsm", "--n", "10", "--eps", "0.1", "--no-checks",
                       "--precision", precision, "--device", "cpu", "--out", str(out))
    assert code == 0, output
    environment = json.loads((out / "result.json").read_text())["environment"]
    assert environment["precision"] == precision
    assert environment["compiled"] is False


def test_python_evaluation_records_the_precision(digits_model: robust.Classifier, digits: Any) -> None:
    model = robust.Classifier(digits_model.module, device=digits_model.device).accelerate("bf16")
    found = robust.evaluate(model, (digits.x[:10], digits.y[:10]), ["fgsm"], eps=0.1)
    assert found.environment["precision"] == "bf16" and found.environment["compiled"] is False
    defended = robust.create_defense("jpeg").wrap(robust.Classifier(digits_model.module, device=digits_model.device))
    defended.accelerate("bf16")
    assert robust.evaluate(defended, (digits.x[:10], digits.y[:10]), ["fgsm"], eps=0.1).environment["precision"] == "bf16"


def test_report_and_json_round_trip(result: Evaluation, tmp_path: Path) -> None:
    html = robust.write_report(result, tmp_path / "report.html")
    text = html.read_text()
    assert text.startswith("<!DOCTYPE html>") and result.model in text and f"{result.robust_accuracy:.2%}" in text
    path = result.to_json(tmp_path / "result.json")
    loaded = robust.load_result(path)
    assert loaded == result
    assert loaded.sweep is not None and len(loaded.sweep) == 2 and loaded.examples == result.examples
    assert all(isinstance(a, AttackSummary) for a in loaded.attacks)
    assert robust.load_result(loaded.to_json(tmp_path / "again.json")) == result


def test_a_changed_result_does_not_round_trip_to_the_original(result: Evaluation, tmp_path: Path) -> None:
    changed = dataclasses.replace(result, attacks=[dataclasses.replace(result.attacks[0], broken=-1), *result.attacks[1:]])
    assert robust.load_result(changed.to_json(tmp_path / "changed.json")) != result


def test_a_defended_result_with_checks_round_trips(digits_model: robust.Classifier, digits: Any, tmp_path: Path) -> None:
    defended = robust.create_defense("feature-squeezing", bit_depth=4).wrap(digits_model)
    found = robust.evaluate(defended, (digits.x[:30], digits.y[:30]), ["fgsm", "pgd:steps=5"], eps=0.1, checks=True,
                            naive=True)
    assert found.checks and found.defenses and found.naive is not None
    loaded = robust.load_result(found.to_json(tmp_path / "result.json"))
    assert loaded == found
    assert robust.write_report(loaded, tmp_path / "report.html").read_text().count('id="defenses"') == 1
