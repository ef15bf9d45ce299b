"""The README's Python examples run as written, so the documentation cannot drift.

Blocks that define pytest tests run as a user's test suite (through the installed pytest
plugin), with a ``my_pkg.nets:build_model`` standing in for the user's model; every other
block runs as a script in a fresh folder.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
SUITES = [b for b in BLOCKS if re.search(r"^def test_\w+\(", b, flags=re.M)]
SCRIPTS = [b for b in BLOCKS if b not in SUITES]
USER_MODEL = "import robust\n\n\ndef build_model():\n    return robust.load_model('cnn-at').module\n"


def test_readme_has_examples() -> None:
    assert len(SCRIPTS) >= 4 and len(SUITES) >= 1


@pytest.mark.parametrize("index", range(len(SCRIPTS)))
def test_readme_example_runs(index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    exec(compile(SCRIPTS[index], f"README.md[python block {index + 1}]", "exec"), {"__name__": "readme_example"})


@pytest.mark.parametrize("index", range(len(SUITES)))
def test_readme_test_suite_passes(index: int, pytester: pytest.Pytester) -> None:
    """The pytest block collects, is marked ``robustness`` and passes against an adversarially trained model."""
    package = pytester.mkpydir("my_pkg")
    (package / "nets.py").write_text(USER_MODEL)
    pytester.makepyfile(test_from_readme=SUITES[index])
    tests = len(re.findall(r"^def test_\w+\(", SUITES[index], flags=re.M))
    result = pytester.runpytest_subprocess("-m", "robustness", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=tests)
    result.stdout.fnmatch_lines([f"*robust: {tests} robustness assertion(s), 0 failed*"])
