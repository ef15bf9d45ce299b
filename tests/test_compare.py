"""Framework comparison: the same attack through robust, ART and Foolbox, verified in one place."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner

import robust
from robust.comparison import adapters as frameworks
from robust.cli import main
from robust.comparison import compare, comparison_table

pytest.importorskip("foolbox")
pytest.importorskip("art")


@pytest.fixture(scope="module")
def points(zoo_cnn: robust.Classifier) -> tuple[torch.Tensor, torch.Tensor]:
    data = robust.load_dataset("mnist", n=150)
    return data.x, data.y


def test_pgd_agrees_across_frameworks(zoo_cnn: robust.Classifier, points: Any) -> None:
    pgd = robust.create_attack("pgd", steps=10, random_start=False)
    result = compare(zoo_cnn, points, [pgd], eps=0.1)
    accuracy = {a.framework: a.robust_accuracy for a in result.attacks}
    assert set(accuracy) == {"robust", "art", "foolbox"}
    assert 0.05 < accuracy["robust"] < result.clean_accuracy, "eps must leave something to compare"
    assert max(accuracy.values()) - min(accuracy.values()) <= 0.01, accuracy
    assert all(a.violations == 0 for a in result.attacks)
    if Path("/proc/self/clear_refs").exists():
        assert all(a.peak_memory_mb is not None for a in result.attacks)
    assert result.comparison is not None
    assert {(g["a"], g["b"]) for g in result.comparison["agreement"]} == {("robust", "art"), ("robust", "foolbox"), ("art", "foolbox")}
    for g in result.comparison["agreement"]:
        assert g["both"] + g["only_a"] + g["only_b"] + g["neither"] == round(result.clean_accuracy * 150)
    assert any(row["match"] == "exact" for row in result.comparison["mapping"]["pgd"]["foolbox"])
    assert "LinfPGD" in result.comparison["capabilities"]["foolbox"]["attacks"]
    table = comparison_table(result.to_dict())
    assert "violations" in table and "robust vs art" in table


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's /proc peak-RSS reset")
def test_peak_memory_measures_what_was_allocated() -> None:
    """A block that fills 256 MiB reports about that much; an idle block reports little."""
    from robust.evaluation.memory import PeakMemory

    with PeakMemory(torch.device("cpu")) as idle:
        pass
    with PeakMemory(torch.device("cpu")) as busy:
        block = torch.ones(64, 2**20)  # 64 Mi float32 values: 256 MiB, touched
        assert float(block[-1, -1]) == 1.0
        del block
    assert idle.mib is not None and busy.mib is not None
    assert idle.mib < 32, idle.mib
    assert 240 <= busy.mib <= 320, busy.mib


def test_a_broken_framework_is_caught(zoo_cnn: robust.Classifier, points: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fake framework that returns perturbations twice the budget: violations, and no credit."""
    real = frameworks.make_runner

    def broken(framework: str, attack: str, params: dict[str, Any], **kw: Any) -> Any:
        if framework != "foolbox":
            return real(framework, attack, params, **kw)
        return lambda model, x, y: x + 2 * kw["eps"] * torch.sign(torch.rand_like(x) - 0.5)

    monkeypatch.setattr(frameworks, "make_runner", broken)
    result = compare(zoo_cnn, points, ["fgsm"], frameworks=["robust", "foolbox"], eps=0.1)
    fake = next(a for a in result.attacks if a.framework == "foolbox")
    assert fake.violations == fake.attacked > 0
    assert fake.broken == 0 and fake.robust_accuracy == pytest.approx(result.clean_accuracy)
    ours = next(a for a in result.attacks if a.framework == "robust")
    assert ours.violations == 0 and ours.broken > 0


def test_foolbox_cw_failures_are_failures(zoo_cnn: robust.Classifier, points: Any) -> None:
    cw = robust.create_attack("cw", steps=1, binary_search_steps=1, initial_const=1e-6)
    result = compare(zoo_cnn, (points[0][:16], points[1][:16]), [cw], frameworks=["foolbox"], eps=100.0, norm="l2")
    assert result.attacks[0].broken == 0
    assert result.robust_accuracy == pytest.approx(result.clean_accuracy)


def test_missing_framework_is_skipped(zoo_cnn: robust.Classifier, points: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(frameworks, "version", lambda f: None if f == "art" else "x")
    with pytest.warns(UserWarning, match="art is not installed"):
        result = compare(zoo_cnn, (points[0][:20], points[1][:20]), ["fgsm"], eps=0.1)
    assert [a.framework for a in result.attacks] == ["robust", "foolbox"]
    assert result.comparison is not None and result.comparison["missing"] == ["art"]


def test_compare_cli(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["compare", "--model", "cnn", "--attack", "fgsm", "--n", "30", "--eps", "0.1",
                                       "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "robust vs foolbox" in result.output
    data = json.loads((tmp_path / "result.json").read_text())
    assert [a["framework"] for a in data["attacks"]] == ["robust", "art", "foolbox"]
    assert 'id="comparison"' in (tmp_path / "report.html").read_text()


def test_compare_cli_bad_framework(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["compare", "--frameworks", "robust,advertorch", "--n", "5", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "unknown framework 'advertorch'" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_evaluate_with_another_framework(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["evaluate", "--model", "cnn", "--attack", "pgd:steps=10", "--framework", "art",
                                       "--n", "30", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "result.json").read_text())
    assert data["attacks"][0]["framework"] == "art" and data["robust_accuracy"] <= 0.05
