"""Plugin registry: entry points, wildcards, suggestions, collisions, None-dropping."""

from __future__ import annotations

from typing import Any

import pytest

import robust
from robust.registry import ATTACKS, Registry


def test_builtins_come_from_entry_points() -> None:
    from importlib.metadata import entry_points

    declared = {ep.name for ep in entry_points(group="robust.attacks")}
    assert {"fgsm", "pgd"} <= declared
    assert declared <= set(robust.list_attacks())


def test_wildcards() -> None:
    assert robust.list_attacks("p*") == ["pgd"]
    assert robust.list_attacks("nothing*") == []


def test_unknown_name_suggests_close_match() -> None:
    with pytest.raises(robust.RobustError, match="did you mean 'pgd'"):
        robust.create_attack("pgdd")


def test_none_parameters_are_dropped() -> None:
    attack = robust.create_attack("pgd", steps=None, restarts=2)
    assert attack.params["steps"] == ATTACKS.get("pgd").defaults["steps"]
    assert attack.params["restarts"] == 2


def test_collision_warns() -> None:
    reg: Registry[Any] = Registry("robust.none", "thing")
    reg.register("a", int)
    with pytest.warns(UserWarning, match="registered twice"):
        reg.register("a", float)
    assert reg.get("a") is float


def test_import_robust_does_not_import_plugins_or_torch() -> None:
    import subprocess
    import sys

    code = "import sys, robust; print('robust.attacks' in sys.modules, 'robust.defenses' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False", "False"]
