"""pytest plugin (entry point ``pytest11``): robustness tests in users' own suites.

- the ``assert_robust`` fixture: ``assert_robust("cnn", "mnist", eps=0.1, min_accuracy=0.5, n=100)``;
  tests that use it are marked ``robustness``, so ``pytest -m robustness`` selects them;
- the marker ``@pytest.mark.robustness`` for tests that call :func:`robust.testing.assert_robust`;
- ``--robust-report DIR`` writes one HTML report of every robustness assertion of the session.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("robust")
    group.addoption("--robust-report", metavar="DIR", default=None,
                    help="write one HTML report (and the JSON results) of every robustness assertion into DIR")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "robustness: a robustness assertion (select with -m robustness)")
    directory = config.getoption("--robust-report")
    if directory:
        from robust.testing import assertions

        assertions.REPORT_PATH[0] = str(Path(directory) / "report.html")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "assert_robust" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.robustness)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    from robust.testing import assertions

    assertions.CURRENT_TEST[0] = item.nodeid
    yield
    assertions.CURRENT_TEST[0] = ""


@pytest.fixture
def assert_robust() -> Callable[..., Any]:
    """:func:`robust.testing.assert_robust`, recorded for ``--robust-report``."""
    from robust.testing.assertions import assert_robust as check

    return check


def pytest_sessionfinish(session: pytest.Session) -> None:
    directory = session.config.getoption("--robust-report")
    if not directory:
        return
    testing = sys.modules.get("robust.testing.assertions")
    from robust.report import render_session
    from robust.result import write_atomic

    out = Path(directory)
    records = []
    for i, record in enumerate(testing.RECORDS if testing else []):
        record.evaluation.to_json(out / f"assertion-{i + 1}.json")
        records.append({"test": record.test, "min_accuracy": record.min_accuracy, "passed": record.passed,
                        "result": record.evaluation.to_dict()})
    write_atomic(out / "report.html", render_session(records))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    testing = sys.modules.get("robust.testing.assertions")  # absent when no robustness assertion ran
    if testing is not None and testing.RECORDS:
        failed = sum(not r.passed for r in testing.RECORDS)
        where = f"; report: {testing.REPORT_PATH[0]}" if testing.REPORT_PATH[0] else ""
        terminalreporter.write_line(f"robust: {len(testing.RECORDS)} robustness assertion(s), {failed} failed{where}")
