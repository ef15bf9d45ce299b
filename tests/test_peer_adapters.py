"""torchattacks, adv-lib and CleverHans as frameworks of ``robust compare``: tables, runners, agreement, visdom."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner

import robust
from robust.cli import main
from robust.comparison import adapters as frameworks
from robust.comparison import compare
from robust.comparison.adapters import capabilities, expand, make_runner, mapping
from robust.comparison.common import MODULES, FrameworkRefused
from robust.comparison.peer_tables import CLASSES
from robust.registry import declarations, list_attacks
from tests.fixtures.nets import Scaled255

PEERS = ("torchattacks", "adv-lib", "cleverhans")
TABLE = [(f, a, n) for f in PEERS for a in CLASSES[f] for n in CLASSES[f][a]]


def _installed(framework: str) -> None:
    pytest.importorskip(MODULES[framework])


def _registered(spec: str) -> None:
    name = spec.split(":")[0]
    if name not in list_attacks():
        pytest.skip(f"our {name!r} is not registered yet")


@pytest.fixture(scope="module")
def mnist64() -> Any:
    return robust.load_dataset("mnist", n=64)


@pytest.mark.parametrize("framework, attack, norm", TABLE)
def test_tables_name_only_declared_parameters(framework: str, attack: str, norm: str) -> None:
    _registered(attack)
    rows = mapping(framework, attack, norm)  # raises on a row naming a parameter the attack does not declare
    assert rows[0].ours == "norm" and rows[0].theirs and rows[0].theirs.startswith(CLASSES[framework][attack][norm])
    assert {r.match for r in rows} <= {"exact", "approximate", "none"} and any(r.match == "exact" for r in rows)
    assert all((r.theirs is None) == (r.match == "none") for r in rows)
    declared = {p.name for p in declarations(robust.registry.ATTACKS.get(attack))} | {"targeted"}
    assert declared <= {r.ours for r in rows}, "every one of our parameters has a row, mapped or not"


@pytest.mark.parametrize("framework, spec, norm, eps, tolerance", [
    ("torchattacks", "fgsm", "linf", 0.1, 0.02),
    ("torchattacks", "pgd:steps=10,random_start=false", "linf", 0.1, 0.02),
    ("torchattacks", "mi-fgsm:steps=10", "linf", 0.1, 0.02),
    ("adv-lib", "pgd:steps=10,random_start=false", "linf", 0.1, 0.02),
    ("adv-lib", "apgd:steps=10", "linf", 0.1, 0.04),
    ("adv-lib", "ddn:steps=20", "l2", 1.5, 0.04),
    ("cleverhans", "fgsm", "l2", 1.5, 0.02),
    ("cleverhans", "pgd:steps=10,random_start=false", "linf", 0.1, 0.02),
    ("art", "apgd:steps=10", "linf", 0.1, 0.04),  # the older frameworks' implementations of the newer attacks
    ("foolbox", "mi-fgsm:steps=10", "linf", 0.1, 0.02),
])
def test_verified_accuracy_agrees_with_ours(framework: str, spec: str, norm: str, eps: float, tolerance: float,
                                            zoo_cnn: robust.Classifier, mnist64: Any) -> None:
    _installed(framework)
    _registered(spec)
    result = compare(zoo_cnn, (mnist64.x, mnist64.y), [spec], frameworks=["robust", framework], eps=eps, norm=norm)
    accuracy = {a.framework: a.robust_accuracy for a in result.attacks}
    assert set(accuracy) == {"robust", framework}
    assert accuracy["robust"] < result.clean_accuracy, "eps must leave something to compare"
    assert abs(accuracy[framework] - accuracy["robust"]) <= tolerance, accuracy
    assert all(a.violations == 0 for a in result.attacks)
    assert result.comparison is not None and result.comparison["mapping"][spec.split(":")[0]][framework]


@pytest.mark.parametrize("framework, attack, norm, eps, params", [
    ("torchattacks", "fgsm", "linf", 0.1, {}),
    ("adv-lib", "pgd", "linf", 0.1, {"steps": 3, "random_start": False}),
    ("cleverhans", "pgd", "linf", 0.1, {"steps": 3, "random_start": False}),
])
def test_other_bounds_are_rescaled(framework: str, attack: str, norm: str, eps: float, params: dict[str, Any],
                                   zoo_cnn: robust.Classifier, mnist64: Any) -> None:
    """The same attack on a [0, 255] model gives 255 times the [0, 1] output, within the bounds.

    (Linf only: CleverHans' L2 step divides the gradient by max(norm, 1e-6), which binds for the
    small gradients of a [0, 255] model, so its L2 steps there are shorter.)
    """
    _installed(framework)
    x, y = mnist64.x[:16], mnist64.y[:16]
    wide = robust.Classifier(Scaled255(zoo_cnn.module), bounds=(0.0, 255.0))
    unit = make_runner(framework, attack, params, norm=norm, eps=eps)(zoo_cnn, x, y)
    scaled = make_runner(framework, attack, params, norm=norm, eps=255 * eps)(wide, 255 * x, y)
    assert torch.allclose(scaled, 255 * unit, atol=1e-2)
    assert 0.0 <= float(scaled.min()) and float(scaled.max()) <= 255.0


@pytest.mark.parametrize("framework, attack, params", [
    ("torchattacks", "cw", {"steps": 3}), ("adv-lib", "deepfool", {"steps": 2}),
    ("cleverhans", "cw", {"steps": 2, "binary_search_steps": 1}),
])
def test_runner_leaves_the_model_as_it_was(framework: str, attack: str, params: dict[str, Any],
                                           zoo_cnn: robust.Classifier, mnist64: Any) -> None:
    """Shape, dtype and device of x; train/eval modes and the parameters' gradients untouched (some call backward)."""
    _installed(framework)
    x, y = mnist64.x[:4], mnist64.y[:4]
    modes = [m.training for m in zoo_cnn.modules()]
    grads = [p.grad for p in zoo_cnn.parameters()]
    out = make_runner(framework, attack, params, norm="l2", eps=None)(zoo_cnn, x, y)
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    assert [m.training for m in zoo_cnn.modules()] == modes
    assert all(p.grad is g for p, g in zip(zoo_cnn.parameters(), grads))


def test_a_library_error_is_a_refusal(zoo_cnn: robust.Classifier, mnist64: Any) -> None:
    """CleverHans asserts step_size <= eps: the batch is refused (in compare: a warning, and it counts as failed)."""
    _installed("cleverhans")
    run = make_runner("cleverhans", "pgd", {"steps": 1, "step_size": 0.5}, norm="linf", eps=0.1)
    with pytest.raises(FrameworkRefused, match="cleverhans's 'pgd' refused: AssertionError"):
        run(zoo_cnn, mnist64.x[:4], mnist64.y[:4])
    with pytest.warns(UserWarning, match="count as failures"):
        result = compare(zoo_cnn, (mnist64.x[:8], mnist64.y[:8]), ["pgd:steps=1,step_size=0.5"],
                         frameworks=["cleverhans"], eps=0.1)
    assert result.attacks[0].broken == 0


@pytest.mark.parametrize("framework, attack, norm, params, targeted, eps, message", [
    ("cleverhans", "pgd", "linf", {"loss": "margin"}, False, 0.3, "'pgd' has only the cross-entropy loss"),
    ("torchattacks", "apgd", "linf", {"loss": "margin"}, False, 0.3, "has no loss 'margin'; it offers ce, dlr"),
    ("adv-lib", "deepfool", "l2", {}, True, None, "adv-lib's 'deepfool' is untargeted only"),
    ("torchattacks", "fab", "linf", {}, False, None, "torchattacks' 'fab' needs eps"),
    ("torchattacks", "deepfool", "linf", {}, False, None, "torchattacks does not offer 'deepfool' with norm 'linf'"),
    ("cleverhans", "deepfool", "l2", {}, False, None, "cleverhans does not offer attack 'deepfool'"),
])
def test_unsupported_raise(framework: str, attack: str, norm: str, params: dict[str, Any], targeted: bool,
                           eps: float | None, message: str) -> None:
    _installed(framework)
    with pytest.raises(robust.RobustError, match=message):
        make_runner(framework, attack, params, norm=norm, eps=eps, targeted=targeted)


def test_capabilities_and_versions() -> None:
    found = capabilities()
    expected = {"torchattacks": "PGDL2", "adv-lib": "ddn", "cleverhans": "projected_gradient_descent"}
    for framework, name in expected.items():
        if frameworks.version(framework) is None:
            assert found[framework] == {}
            continue
        assert name in found[framework]["attacks"] and found[framework]["defenses"] == []
        assert found[framework]["attacks"] == sorted(found[framework]["attacks"])


@pytest.mark.parametrize("framework, package", [("torchattacks", "torchattacks"), ("adv-lib", "adv_lib"),
                                                ("cleverhans", "cleverhans")])
def test_missing_peer(framework: str, package: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, package, None)
    with pytest.raises(robust.RobustError, match=f"{framework} is not installed: pip install --no-deps {framework}=="):
        make_runner(framework, "pgd", {}, norm="linf", eps=0.1)
    assert frameworks.version(framework) is None and capabilities()[framework] == {}
    assert mapping(framework, "pgd", "linf"), "the tables are data and need no install"


def test_advlib_imports_without_visdom() -> None:
    """adv-lib's attacks import with a stand-in visdom that is gone afterwards; using it names what to install."""
    _installed("adv-lib")
    code = """if True:
        import importlib.util, json, sys
        installed = importlib.util.find_spec("visdom") is not None
        if installed:
            sys.modules["visdom"] = None  # as if it were not installed
        from robust.comparison import advlib
        found = {"ddn": callable(advlib.attacks().ddn), "left": repr(sys.modules.get("visdom", "absent"))}
        from adv_lib.utils.visdom_logger import VisdomLogger
        try:
            VisdomLogger(port=1)
        except Exception as exc:
            found["error"] = f"{type(exc).__name__}: {exc}"
        print(json.dumps({**found, "installed": installed}))
    """
    out = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert out["ddn"] and out["left"] == ("None" if out["installed"] else "'absent'")
    assert out["error"].startswith("RobustError: adv-lib's live plots") and "pip install visdom" in out["error"]


def test_import_stays_cheap() -> None:
    code = "import sys, robust.comparison; print(sorted({'torchattacks', 'adv_lib', 'cleverhans'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_all_expands_to_every_framework(zoo_cnn: robust.Classifier, mnist64: Any,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    assert expand("all") == list(frameworks.FRAMEWORKS) == expand(["robust", "all", "art"])
    assert expand("robust, art") == ["robust", "art"]
    real = frameworks.version
    monkeypatch.setattr(frameworks, "version", lambda f: None if f == "cleverhans" else real(f))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = compare(zoo_cnn, (mnist64.x[:16], mnist64.y[:16]), ["fgsm"], frameworks="all", eps=0.1)
    assert any("cleverhans is not installed" in str(w.message) for w in caught)
    installed = [f for f in frameworks.FRAMEWORKS if f != "cleverhans" and real(f) is not None]
    offered = [f for f in installed if frameworks.supports(f, "fgsm", "linf") or f == "robust"]
    assert [a.framework for a in result.attacks] == offered
    assert result.comparison is not None and result.comparison["missing"] == ["cleverhans"]


def test_compare_cli_all(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["compare", "--model", "cnn", "--attack", "fgsm", "--n", "16", "--eps", "0.1",
                                       "--frameworks", "all", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "result.json").read_text())
    ran = [a["framework"] for a in data["attacks"]]
    assert ran[0] == "robust" and "autoattack" not in ran and "adv-lib" not in ran  # neither has FGSM
    assert all(f in ran for f in ("torchattacks", "cleverhans") if frameworks.version(f))
