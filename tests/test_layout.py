"""The shape of the package, read from its source: layers import one way, no cycles, plugins never by name."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"robust": ROOT / "robust", "robust.attacks": ROOT / "attacks", "robust.defenses": ROOT / "defenses"}
CONTRACTS = {f"robust.{name}" for name in
             ("errors", "params", "model", "ops", "losses", "attack", "gradient", "defense", "registry", "result")}
# What each group may import besides itself (every module's imports, those inside functions included).
ALLOWED = {
    "contracts": set(),
    "data": {"contracts"},
    "zoo": {"contracts"},
    "report": {"contracts"},
    "evaluation": {"contracts", "data", "zoo"},
    "comparison": {"contracts", "data", "evaluation"},
    "training": {"contracts", "data"},
    "testing": {"contracts", "data", "zoo", "evaluation", "report"},
    "runs": {"contracts", "data", "zoo", "report", "evaluation", "comparison", "training"},
    "cli": {"contracts", "report", "comparison", "runs"},
    "plugins": {"contracts"},
    "root": {"contracts", "cli"},
}
for _allowed in ALLOWED.values():
    _allowed.add("root")  # `from robust import __version__`: the package's own __init__ imports nothing


def modules() -> dict[str, Path]:
    """Every module of the distribution by its import name (plugins under robust.attacks / robust.defenses)."""
    found = {}
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


MODULES = modules()


def group(module: str) -> str:
    if module in CONTRACTS:
        return "contracts"
    if module.startswith(("robust.attacks", "robust.defenses")):
        return "plugins"
    if module in ("robust", "robust.__main__"):
        return "root"
    return module.split(".")[1]


def imports(module: str) -> Iterator[str]:
    """The modules of the distribution that ``module`` imports, anywhere in its source."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        yield from (t for t in targets if t in MODULES or t.split(".")[0] in ("attacks", "defenses"))


GRAPH = {module: set(imports(module)) - {module} for module in MODULES}


def test_the_map_sees_every_layer() -> None:
    """The parser finds the edges that exist, so an empty graph cannot pass the tests below."""
    assert {"robust.cli.main", "robust.evaluation.cascade", "robust.attacks.pgd", "robust.defenses.jpeg"} <= set(MODULES)
    assert "robust.cli.common" in GRAPH["robust.cli.evaluate"]
    assert "robust.gradient" in GRAPH["robust.attacks.pgd"]
    assert "robust.defenses.spatial_smoothing" in GRAPH["robust.defenses.feature_squeezing"]  # a relative import
    assert "robust.comparison.adapters" in GRAPH["robust.comparison.external"]  # `from package import module`


def test_no_import_cycles() -> None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(GRAPH[module]):
            if state.get(target) == 1:
                cycle = path[path.index(target):] + [target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_run_one_way(module: str) -> None:
    mine = group(module)
    for target in GRAPH[module]:
        assert not target.startswith(("attacks", "defenses")), f"{module} imports {target}, a top-level plugin name"
        theirs = group(target)
        if module.startswith("robust.") and not module.startswith(("robust.attacks", "robust.defenses")):
            assert theirs != "plugins", f"{module} imports the plugin {target} by name; plugins come from entry points"
        if theirs != mine:
            assert theirs in ALLOWED[mine], f"{module} ({mine}) imports {target} ({theirs})"


def test_plugins_import_only_the_contracts_and_each_other() -> None:
    for module in (m for m in MODULES if group(m) == "plugins"):
        outside = {t for t in GRAPH[module] if group(t) not in ("contracts", "plugins")}
        assert not outside, f"{module} imports {outside}"


def test_cli_modules_import_one_way() -> None:
    """Shared parsing and errors first, then one module per command, then the group."""
    commands = {m for m in MODULES if m.startswith("robust.cli.") and m not in ("robust.cli.common", "robust.cli.main")}
    assert {t for t in GRAPH["robust.cli.common"] if t.startswith("robust.cli")} == set()
    for command in commands:
        assert {t for t in GRAPH[command] if t.startswith("robust.cli")} <= {"robust.cli.common"}, command
    assert commands <= GRAPH["robust.cli.main"]


def test_modules_stay_small() -> None:
    sizes = {m: len(p.read_text().splitlines()) for m, p in MODULES.items()}
    assert max(sizes.values()) <= 320, sorted(sizes.items(), key=lambda kv: -kv[1])[:3]
