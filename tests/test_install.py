"""The built wheel, installed outside the checkout: namespaced plugins that a user's own files cannot shadow."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ATTACKS = ["apgd", "apgd-t", "boundary", "cw", "ddn", "deepfool", "fab", "fab-t", "fgsm", "fmn", "mi-fgsm", "pgd", "square",
           "standard"]
DEFENSES = ["adversarial-training", "feature-squeezing", "jpeg", "spatial-smoothing"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                            "-w", str(out), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    return next(out.glob("robust-*.whl")), built.stdout + built.stderr


@pytest.fixture(scope="module")
def installed(wheel: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", str(target),
                    str(wheel[0])], check=True, capture_output=True, timeout=600)
    return {**os.environ, "PYTHONPATH": str(target), "OMP_NUM_THREADS": "1"}


@pytest.fixture
def user_project(tmp_path: Path) -> Path:
    """A research folder with modules of its own named attacks and defenses."""
    (tmp_path / "attacks.py").write_text("raise ImportError('the user attacks module was imported')\n")
    (tmp_path / "defenses.py").write_text("raise ImportError('the user defenses module was imported')\n")
    return tmp_path


def test_wheel_has_no_top_level_plugin_packages(wheel: tuple[Path, str]) -> None:
    names = zipfile.ZipFile(wheel[0]).namelist()
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"robust"}, tops
    for needed in ("robust/attacks/pgd.py", "robust/defenses/jpeg.py", "robust/zoo/weights/cnn.pt",
                   "robust/zoo/weights/zoo.json", "robust/report/templates/report.html.j2", "robust/py.typed"):
        assert needed in names, needed


def test_wheel_builds_quietly(wheel: tuple[Path, str]) -> None:
    assert "BuildBackendWarning" not in wheel[1] and "is absent from the `packages`" not in wheel[1], wheel[1][-3000:]


def test_api_beside_a_users_attacks_module(installed: dict[str, str], user_project: Path) -> None:
    code = ("import robust, robust.attacks; print(robust.list_attacks()); print(robust.list_defenses()); "
            "print(robust.attacks.__file__)")
    done = subprocess.run([sys.executable, "-c", code], cwd=user_project, env=installed, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    attacks, defenses, location = done.stdout.splitlines()
    assert attacks == str(ATTACKS) and defenses == str(DEFENSES)
    assert location.startswith(installed["PYTHONPATH"]), "the installed wheel is the one being tested"


def test_cli_beside_a_users_attacks_module(installed: dict[str, str], user_project: Path) -> None:
    listed = subprocess.run([sys.executable, "-m", "robust", "list", "attacks"], cwd=user_project, env=installed,
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[0] for line in listed.stdout.splitlines() if not line.startswith(" ")] == ATTACKS
    out = user_project / "run"
    done = subprocess.run([sys.executable, "-m", "robust", "evaluate", "--model", "cnn", "--attack", "fgsm",
                           "--attack", "pgd:steps=5", "--defense", "jpeg", "--n", "20", "--out", str(out)],
                          cwd=user_project, env=installed, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (out / "result.json").exists() and (out / "report.html").exists()


def test_a_plugin_that_fails_to_load_is_named(tmp_path: Path) -> None:
    """A broken entry point is reported with its name and its error, not as 'none installed'."""
    dist = tmp_path / "broken_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[robust.attacks]\nbroken = no_such_module_here:Attack\n")
    code = ("import warnings, robust\nwarnings.simplefilter('ignore')\n"
            "try:\n    robust.create_attack('broken')\nexcept robust.RobustError as e:\n    print(e)\n"
            "print(robust.list_attacks())")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    message, listed = done.stdout.splitlines()
    assert "attack plugin 'broken' (no_such_module_here:Attack) failed to load" in message
    assert "ModuleNotFoundError" in message and "none installed" not in message
    assert "pgd" in listed, "the other plugins still load"
