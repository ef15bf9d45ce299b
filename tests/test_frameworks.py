"""One attack specification through robust, ART and Foolbox: tables, runners, agreement, failures."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
import torch

import robust
from robust.comparison import adapters as frameworks
from robust.comparison.adapters import ATTACKS, FRAMEWORKS, ParamMapping, capabilities, make_runner, mapping, supports

pytest.importorskip("art")
pytest.importorskip("foolbox")

NORMS = ("linf", "l2")
CLASSIC = ("fgsm", "pgd", "deepfool", "cw", "boundary")  # offered by robust, ART and Foolbox (AutoAttack: its own file)
COMBOS = [(f, a, n) for f in FRAMEWORKS for a in ATTACKS for n in NORMS if supports(f, a, n)]
SMALL: dict[str, dict[str, Any]] = {  # budgets that keep every run well under a second or two
    "fgsm": {}, "pgd": {"steps": 3}, "deepfool": {"steps": 3}, "cw": {"steps": 3, "binary_search_steps": 1},
    "boundary": {"max_queries": 100, "init_draws": 20},
}


@pytest.fixture(scope="module")
def mnist8() -> Any:
    return robust.load_dataset("mnist", n=8)


@pytest.fixture(scope="module")
def mnist64() -> Any:
    return robust.load_dataset("mnist", n=64)


def test_support_matrix() -> None:
    assert supports("foolbox", "deepfool", "linf") and not supports("art", "deepfool", "linf")
    assert not any(supports(f, "cw", "linf") or supports(f, "boundary", "linf") for f in FRAMEWORKS)
    assert all(supports(f, a, "l2") for f in ("robust", "art", "foolbox") for a in CLASSIC)
    assert not any(supports("autoattack", a, n) for a in CLASSIC for n in NORMS)
    assert not supports("advertorch", "pgd", "linf")


@pytest.mark.parametrize("framework, attack, norm", COMBOS)
def test_mapping_covers_every_parameter(framework: str, attack: str, norm: str) -> None:
    rows = mapping(framework, attack, norm)
    assert rows and all(isinstance(r, ParamMapping) for r in rows)
    assert {r.match for r in rows} <= {"exact", "approximate", "none"}
    assert any(r.match == "exact" for r in rows)
    assert all((r.theirs is None) == (r.match == "none") for r in rows), [r for r in rows if r.theirs is None]
    ours = set(robust.registry.ATTACKS.get(attack).defaults) | {"targeted"}
    assert ours <= {r.ours for r in rows}, "every one of our parameters has a row, mapped or not"


def test_robust_rows_come_from_the_typed_declarations() -> None:
    rows = {r.ours: r for r in mapping("robust", "pgd", "linf")}
    assert rows["steps"].note == "an integer >= 1" and rows["loss"].note == "one of ce, margin, dlr"
    assert rows["step_size"].note == "a number > 0 (or none)"


def test_mapping_names_the_unsupported() -> None:
    with pytest.raises(robust.RobustError, match="art does not offer 'deepfool' with norm 'linf'; it offers l2"):
        mapping("art", "deepfool", "linf")
    with pytest.raises(robust.RobustError, match="unknown framework 'foolbx'.*did you mean 'foolbox'"):
        mapping("foolbx", "pgd", "linf")
    with pytest.raises(robust.RobustError, match="foolbox does not offer attack 'square'"):
        mapping("foolbox", "square", "linf")


@pytest.mark.parametrize("framework", ["robust", "art", "foolbox"])
@pytest.mark.parametrize("attack", CLASSIC)
def test_runner_returns_input_shape(framework: str, attack: str, zoo_cnn: robust.Classifier, mnist8: Any) -> None:
    x, y = mnist8.x, mnist8.y
    norm, eps = ("linf", 0.3) if attack in frameworks.FIXED_EPS else ("l2", None)
    modes = [m.training for m in zoo_cnn.modules()]
    out = make_runner(framework, attack, SMALL[attack], norm=norm, eps=eps)(zoo_cnn, x, y)
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    assert bool(torch.isfinite(out).all())
    assert [m.training for m in zoo_cnn.modules()] == modes, "train/eval modes are restored"


@pytest.mark.parametrize("eps", [0.1, 0.3])
def test_pgd_agrees_across_frameworks(eps: float, zoo_cnn: robust.Classifier, mnist64: Any) -> None:
    """Same PGD-10 (no random start): the robust accuracy re-judged by the model agrees within 1 point."""
    x, y = mnist64.x, mnist64.y
    ours = robust.create_attack("pgd", steps=10, random_start=False)(zoo_cnn, x, y, eps=eps)
    expected = 1.0 - float(ours.success.float().mean())
    for framework in ("art", "foolbox"):
        x_adv = make_runner(framework, "pgd", {"steps": 10, "random_start": False}, norm="linf", eps=eps)(zoo_cnn, x, y)
        assert float((x_adv - x).abs().max()) <= eps + 1e-6 and 0.0 <= float(x_adv.min()) <= float(x_adv.max()) <= 1.0
        accuracy = float((zoo_cnn.predict(x_adv).cpu() == y).float().mean())
        assert abs(accuracy - expected) <= 0.01, (framework, accuracy, expected)


def test_foolbox_cw_failures_come_back_as_x(zoo_cnn: robust.Classifier, mnist8: Any) -> None:
    import foolbox

    x, y = mnist8.x, mnist8.y
    params = {"steps": 1, "binary_search_steps": 1, "initial_const": 1e-6}
    assert torch.equal(make_runner("foolbox", "cw", params, norm="l2", eps=None)(zoo_cnn, x, y), x)
    # Mixed: Foolbox itself returns zeros for the failures and real images for the rest.
    params = {"steps": 20, "binary_search_steps": 2, "initial_const": 1.0, "lr": 0.1}
    out = make_runner("foolbox", "cw", params, norm="l2", eps=None)(zoo_cnn, x, y)
    fmodel = foolbox.PyTorchModel(zoo_cnn.module.eval(), bounds=(0, 1), device=zoo_cnn.device)
    attack = foolbox.attacks.L2CarliniWagnerAttack(steps=20, binary_search_steps=2, initial_const=1.0, stepsize=0.1)
    raw, _, _ = attack(fmodel, x.to(zoo_cnn.device), y.to(zoo_cnn.device), epsilons=None)
    raw = raw.cpu()
    failed = raw.flatten(1).abs().amax(dim=1) == 0
    assert bool(failed.any()) and not bool(failed.all())
    assert torch.equal(out[failed], x[failed]) and torch.allclose(out[~failed], raw[~failed], atol=1e-6)


@pytest.mark.parametrize("framework", [f for f in FRAMEWORKS if supports(f, "pgd", "linf")])
def test_targeted_pgd_reaches_targets(framework: str, zoo_cnn: robust.Classifier, mnist8: Any) -> None:
    x, targets = mnist8.x, (mnist8.y + 1) % 10
    run = make_runner(framework, "pgd", {"steps": 10, "random_start": False}, norm="linf", eps=0.3, targeted=True)
    assert torch.equal(zoo_cnn.predict(run(zoo_cnn, x, targets)).cpu(), targets)


def test_framework_refusals_become_robust_errors(zoo_cnn: robust.Classifier, mnist8: Any) -> None:
    x, y = mnist8.x, mnist8.y
    params = {"max_queries": 60, "starting_points": x.clone()}  # not adversarial: Foolbox refuses, ART draws noise
    with pytest.raises(robust.RobustError, match="foolbox's 'boundary' refused: .*not adversarial"):
        make_runner("foolbox", "boundary", params, norm="l2", eps=None)(zoo_cnn, x, y)
    assert make_runner("art", "boundary", params, norm="l2", eps=None)(zoo_cnn, x, y).shape == x.shape


@pytest.mark.parametrize("framework, attack, norm, params, targeted, message", [
    ("art", "deepfool", "linf", {}, False, "art does not offer 'deepfool' with norm 'linf'"),
    ("foolbox", "cw", "linf", {}, False, "foolbox does not offer 'cw' with norm 'linf'"),
    ("foolbox", "pgd", "linf", {"loss": "margin"}, False, "only the cross-entropy loss"),
    ("art", "deepfool", "l2", {}, True, "'deepfool' is untargeted only"),
    ("foolbox", "fgsm", "linf", {}, True, "'fgsm' is untargeted only"),
])
def test_unsupported_raise(framework: str, attack: str, norm: str, params: dict[str, Any], targeted: bool,
                           message: str) -> None:
    eps = 0.3 if attack in frameworks.FIXED_EPS else None
    with pytest.raises(robust.RobustError, match=message):
        make_runner(framework, attack, params, norm=norm, eps=eps, targeted=targeted)


@pytest.mark.parametrize("framework, package", [("foolbox", "foolbox"), ("art", "adversarial-robustness-toolbox")])
def test_missing_framework(framework: str, package: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, framework, None)
    with pytest.raises(robust.RobustError, match=f"{framework} is not installed: pip install {package}"):
        make_runner(framework, "fgsm", {}, norm="linf", eps=0.1)
    assert frameworks.version(framework) is None
    assert capabilities()[framework] == {}
    assert mapping(framework, "fgsm", "linf"), "the tables are data and need no install"


def test_capabilities_and_versions() -> None:
    found = capabilities()
    assert "ProjectedGradientDescent" in found["art"]["attacks"] and "JpegCompression" in found["art"]["defenses"]
    assert "LinfPGD" in found["foolbox"]["attacks"] and found["foolbox"]["defenses"] == []
    assert "pgd" in found["robust"]["attacks"]
    assert all(names == sorted(names) for lists in found.values() for names in lists.values())
    assert frameworks.version("robust") == robust.__version__
    assert frameworks.version("art") and frameworks.version("foolbox")


def test_import_stays_cheap() -> None:
    code = "import sys, robust.comparison; print(sorted({'art', 'foolbox'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
