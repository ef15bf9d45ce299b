"""AutoAttack's official code (pyautoattack) as a framework of ``robust compare``: tables, runners, bounds, refusals."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner

import robust
from robust.cli import main
from robust.comparison import adapters as frameworks
from robust.comparison import compare, external_attack
from robust.comparison.adapters import capabilities, make_runner, mapping, supports
from robust.comparison.tables import CLASSES
from tests.fixtures.nets import Scaled255

pytest.importorskip("pyautoattack")

OFFERED = tuple(CLASSES["autoattack"])
SMALL: dict[str, dict[str, Any]] = {  # budgets that keep every run on 8 points to a second or two
    "apgd": {"steps": 3}, "apgd-t": {"steps": 3, "targets": 2}, "fab": {"steps": 3}, "fab-t": {"steps": 3, "targets": 2},
    "square": {"queries": 20}, "standard": {"steps": 3, "targets": 2, "queries": 20},
}


def _offered(attack: str, norm: str = "linf") -> None:
    if not supports("autoattack", attack, norm):  # our plugin failed to load: nothing of ours to map
        pytest.skip(f"our {attack!r} is not registered")


@pytest.fixture(scope="module")
def robust_cnn() -> robust.Classifier:
    return robust.load_model("cnn-at")


@pytest.fixture(scope="module")
def mnist64() -> Any:
    return robust.load_dataset("mnist", n=64)


def test_apgd_agrees_with_ours(robust_cnn: robust.Classifier, mnist64: Any) -> None:
    result = compare(robust_cnn, (mnist64.x, mnist64.y), ["apgd:steps=20"], frameworks=["robust", "autoattack"], eps=0.3)
    entries = {a.framework: a for a in result.attacks}
    assert set(entries) == {"robust", "autoattack"} and all(a.name == "apgd" for a in result.attacks)
    assert entries["autoattack"].violations == 0 and entries["robust"].violations == 0
    assert abs(entries["robust"].robust_accuracy - entries["autoattack"].robust_accuracy) <= 0.04, entries
    assert result.comparison is not None
    [pair] = result.comparison["agreement"]
    assert (pair["attack"], pair["a"], pair["b"]) == ("apgd", "robust", "autoattack")
    assert pair["both"] + pair["only_a"] + pair["only_b"] + pair["neither"] == round(result.clean_accuracy * 64)
    rows = {r["ours"]: r for r in result.comparison["mapping"]["apgd"]["autoattack"]}
    assert rows["steps"]["theirs"] == "n_iter" and rows["norm"]["theirs"] == "APGDAttack(norm='Linf')"
    assert result.comparison["frameworks"]["autoattack"] == "0.2.0"
    assert "apgd-ce" in result.comparison["capabilities"]["autoattack"]["attacks"]


def test_bounds_other_than_unit(robust_cnn: robust.Classifier, mnist64: Any) -> None:
    """On a (0, 255) model AutoAttack sees [0, 1]: output inside the bounds and the ball, same accuracy."""
    x, y = mnist64.x[:32], mnist64.y[:32]
    wide = robust.Classifier(Scaled255(robust_cnn), bounds=(0, 255))
    apgd = external_attack("autoattack", "apgd", steps=10)
    on_wide = apgd(wide, x * 255, y, eps=0.3 * 255, seed=3)
    on_unit = apgd(robust_cnn, x, y, eps=0.3, seed=3)
    assert on_wide.violations == 0 and on_unit.violations == 0
    assert 0.0 <= float(on_wide.x_adv.min()) and float(on_wide.x_adv.max()) <= 255.0
    assert float(on_wide.linf.max()) <= 0.3 * 255 * (1 + 1e-5)
    assert float(on_wide.linf.max()) > 0.29 * 255, "the budget was used at the model's scale"
    accuracy = [1 - float(r.success.float().mean()) for r in (on_wide, on_unit)]
    assert abs(accuracy[0] - accuracy[1]) <= 1 / len(x), accuracy


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("attack", OFFERED)
def test_mapping_of_every_offered_attack(attack: str, norm: str) -> None:
    _offered(attack, norm)
    rows = mapping("autoattack", attack, norm)  # raises if a row names a parameter we do not declare
    declared = set(robust.registry.ATTACKS.get(attack).defaults)
    assert {r.ours for r in rows} == declared | {"eps", "targeted"}
    assert all(r.match in ("exact", "approximate", "none") and (r.theirs is None) == (r.match == "none") for r in rows)
    assert rows[0].theirs == f"{CLASSES['autoattack'][attack][norm]}(norm={'Linf' if norm == 'linf' else 'L2'!r})"


def test_what_autoattack_does_not_offer() -> None:
    assert not supports("autoattack", "deepfool", "l2") and not supports("autoattack", "pgd", "linf")
    with pytest.raises(robust.RobustError, match="autoattack does not offer attack 'deepfool'; it offers apgd, apgd-t, "
                                                 "fab, fab-t, square, standard"):
        mapping("autoattack", "deepfool", "l2")
    with pytest.raises(robust.RobustError, match="art does not offer attack 'apgd-t'; it offers fgsm, pgd"):
        mapping("art", "apgd-t", "linf")
    assert not any(supports(f, a, "linf") for f in ("art", "foolbox") for a in ("apgd-t", "fab", "fab-t", "standard"))
    assert supports("art", "apgd", "linf") and supports("art", "square", "l2") and not supports("foolbox", "apgd", "l2")


@pytest.mark.parametrize("attack", OFFERED)
def test_runner_returns_raw_output_in_shape(attack: str, zoo_cnn: robust.Classifier, mnist64: Any) -> None:
    _offered(attack)
    x, y = mnist64.x[:8], mnist64.y[:8]
    zoo_cnn.train()  # a model in train mode comes back in train mode
    try:
        modes = [m.training for m in zoo_cnn.modules()]
        out = make_runner("autoattack", attack, SMALL[attack], norm="linf", eps=0.1)(zoo_cnn, x, y)
        assert [m.training for m in zoo_cnn.modules()] == modes, "train/eval modes are restored"
    finally:
        zoo_cnn.eval()
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    assert bool(torch.isfinite(out).all()) and float((out - x).abs().max()) <= 0.1 + 1e-6


def test_standard_preset_is_verified(zoo_cnn: robust.Classifier, mnist64: Any, caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("auto-attack")
    with caplog.at_level(logging.DEBUG, logger="auto-attack"):
        result = compare(zoo_cnn, (mnist64.x[:32], mnist64.y[:32]), ["standard:steps=5,targets=2,queries=50"],
                         frameworks=["autoattack"], eps=0.1)
    assert not [r for r in caplog.records if r.name == "auto-attack"] and not log.disabled, "silenced, then restored"
    [entry] = result.attacks
    assert (entry.name, entry.framework, entry.violations) == ("standard", "autoattack", 0)
    assert entry.robust_accuracy < result.clean_accuracy
    assert result.comparison is not None
    rows = {r["ours"]: r for r in result.comparison["mapping"]["standard"]["autoattack"]}
    assert rows["queries"]["theirs"] == "n_queries (square)" and rows["targeted"]["match"] == "none"


def test_standard_pairs_with_our_whole_preset(zoo_cnn: robust.Classifier, mnist64: Any) -> None:
    """Compared with AutoAttack's, our preset runs as one attack (its cascade), not as its four parts."""
    result = compare(zoo_cnn, (mnist64.x[:32], mnist64.y[:32]), ["standard:steps=5,targets=2,queries=50"],
                     frameworks=["robust", "autoattack"], eps=0.1)
    assert [(a.name, a.framework) for a in result.attacks] == [("standard", "robust"), ("standard", "autoattack")]
    assert all(a.violations == 0 for a in result.attacks)
    assert result.comparison is not None and len(result.comparison["agreement"]) == 1


def test_targeted_square_reaches_targets(zoo_cnn: robust.Classifier, mnist64: Any) -> None:
    x, targets = mnist64.x[:8], (mnist64.y[:8] + 1) % 10
    square = external_attack("autoattack", "square", queries=300)
    found = square(zoo_cnn, x, targets, eps=0.4, targeted=True, seed=0)
    assert found.violations == 0 and float(found.linf.max()) <= 0.4 + 1e-6
    assert int(found.success.sum()) >= 4, "verified: the model predicts the target"
    assert torch.equal(zoo_cnn.predict(found.x_adv[found.success]).cpu(), targets[found.success.cpu()])


def test_seeded_runs_repeat(zoo_cnn: robust.Classifier, mnist64: Any) -> None:
    x, y = mnist64.x[:8], mnist64.y[:8]
    apgd = external_attack("autoattack", "apgd", steps=3)
    first, again = (apgd(zoo_cnn, x, y, eps=0.1, seed=5).x_adv for _ in range(2))
    assert torch.equal(first, again)


@pytest.mark.parametrize("framework, attack, params, targeted, eps, message", [
    ("autoattack", "apgd", {"loss": "margin"}, False, 0.3, "autoattack's 'apgd' has no loss 'margin'; it offers ce, dlr"),
    ("autoattack", "apgd", {}, True, 0.3, "autoattack's 'apgd' is untargeted only"),
    ("autoattack", "standard", {}, True, 0.3, "autoattack's 'standard' is untargeted only"),
    ("autoattack", "apgd-t", {}, False, None, "attack 'apgd-t' needs eps"),
    ("autoattack", "fab", {}, False, None, "autoattack's 'fab' needs eps"),
])
def test_refusals(framework: str, attack: str, params: dict[str, Any], targeted: bool, eps: float | None,
                  message: str) -> None:
    _offered(attack)
    with pytest.raises(robust.RobustError, match=message):
        make_runner(framework, attack, params, norm="linf", eps=eps, targeted=targeted)


def test_margin_loss_refused_in_compare(zoo_cnn: robust.Classifier, mnist64: Any) -> None:
    with pytest.raises(robust.RobustError, match="no loss 'margin'"):
        compare(zoo_cnn, (mnist64.x[:8], mnist64.y[:8]), ["apgd:loss=margin"], frameworks=["autoattack"], eps=0.1)


def test_missing_pyautoattack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyautoattack", None)
    with pytest.raises(robust.RobustError, match="autoattack is not installed: pip install pyautoattack"):
        make_runner("autoattack", "apgd", {}, norm="linf", eps=0.1)
    assert frameworks.version("autoattack") is None and capabilities()["autoattack"] == {}
    assert mapping("autoattack", "apgd", "linf"), "the tables are data and need no install"


def test_capabilities_and_version() -> None:
    found = capabilities()["autoattack"]
    assert found["attacks"] == ["apgd-ce", "apgd-dlr", "apgd-t", "fab", "fab-t", "square"]
    assert found["versions"] == ["custom", "plus", "rand", "standard"] and found["defenses"] == []
    assert frameworks.version("autoattack") == "0.2.0" and "autoattack" in frameworks.FRAMEWORKS


def test_import_stays_cheap() -> None:
    code = "import sys, robust.comparison; print('pyautoattack' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_compare_cli_names_autoattack(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["compare", "--model", "cnn", "--attack", "apgd:steps=5", "--n", "16", "--eps",
                                       "0.1", "--frameworks", "robust,autoattack", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "robust vs autoattack" in result.output
    data = json.loads((tmp_path / "result.json").read_text())
    assert [a["framework"] for a in data["attacks"]] == ["robust", "autoattack"]


def test_evaluate_cli_with_autoattack(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["evaluate", "--model", "cnn", "--attack", "apgd:steps=5", "--framework",
                                       "autoattack", "--no-checks", "--n", "16", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "result.json").read_text())
    assert data["attacks"][0]["framework"] == "autoattack" and data["attacks"][0]["violations"] == 0
