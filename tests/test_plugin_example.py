"""The example third-party plugin: installed, listed, used and conformant."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "noise-attack-plugin"


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(target), str(EXAMPLE)], check=True, capture_output=True)
    return {**os.environ, "PYTHONPATH": str(target)}


def run(code: str, env: dict[str, str]) -> str:
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout


def test_listed_after_install(plugin_env: dict[str, str]) -> None:
    out = subprocess.run([sys.executable, "-m", "robust", "list", "attacks"], env=plugin_env, capture_output=True, text=True).stdout
    assert "noise" in out.split() and "pgd" in out.split()


def test_passes_the_conformance_kit(plugin_env: dict[str, str]) -> None:
    out = run("import robust, robust.testing as t; t.check_attack(robust.create_attack('noise', tries=5)); print('ok')",
              plugin_env)
    assert out.strip() == "ok"


def test_not_installed_means_not_listed() -> None:
    import robust

    listed = robust.list_attacks()
    assert "pgd" in listed and "fgsm" in listed, "the built-in plugins load from their entry points"
    assert "noise" not in listed
