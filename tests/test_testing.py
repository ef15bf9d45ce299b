"""assert_robust and the pytest plugin, as a user's test suite meets them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import robust
from robust import testing
from robust.testing import assert_robust


@pytest.fixture(autouse=True)
def own_records() -> Any:
    """Keep this file's deliberate assertions out of the session's robustness summary."""
    before = list(testing.RECORDS)
    yield
    testing.RECORDS[:] = before


def test_assert_robust_passes_and_returns_the_result(digits_model: robust.Classifier, digits: Any) -> None:
    result = assert_robust(digits_model, (digits.x, digits.y), eps=0.0, min_accuracy=0.9, n=100)
    assert result.n == 100 and result.robust_accuracy == result.clean_accuracy >= 0.9


def test_assert_robust_failure_is_readable(digits_model: robust.Classifier, digits: Any) -> None:
    with pytest.raises(AssertionError) as info:
        assert_robust(digits_model, (digits.x, digits.y), attack="pgd", eps=0.3, min_accuracy=0.5, n=50, steps=10)
    message = str(info.value)
    assert "robust accuracy 0.00% < required 50.00%" in message
    assert re.search(r"clean accuracy \d+\.\d\d%", message) and "n=50" in message
    assert "25 more sample(s)" in message and "pgd" in message


def test_assert_robust_rejects_bad_attack_params(digits_model: robust.Classifier, digits: Any) -> None:
    with pytest.raises(robust.RobustError, match="unknown parameter 'stepz'"):
        assert_robust(digits_model, (digits.x, digits.y), eps=0.1, min_accuracy=0.0, n=8, stepz=3)


SUITE = '''
import pytest
from robust.testing import assert_robust as plain_assert_robust

def test_cnn_holds_at_zero_eps(assert_robust):
    assert_robust("cnn", "mnist", eps=0.0, min_accuracy=0.9, n=20)

def test_cnn_breaks_at_large_eps(assert_robust):
    assert_robust("cnn", "mnist", eps=0.3, min_accuracy=0.5, n=20, steps=10)

@pytest.mark.robustness
def test_marked_call():
    plain_assert_robust("cnn", "mnist", eps=0.05, min_accuracy=0.0, n=10)

def test_unrelated():
    assert True
'''


def test_plugin_marks_selects_and_reports(pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytester.makepyfile(test_user_suite=SUITE)
    out = tmp_path / "robust-report"
    result = pytester.runpytest_subprocess("-m", "robustness", "--robust-report", str(out), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1, deselected=1)
    result.stdout.fnmatch_lines(["*robust accuracy 0.00% < required 50.00%*report: *report.html*",
                                 "*robust: 3 robustness assertion(s), 1 failed*"])
    html = (out / "report.html").read_text()
    for name in ("test_cnn_holds_at_zero_eps", "test_cnn_breaks_at_large_eps", "test_marked_call"):
        assert name in html
    assert html.count('class="fail"') == 1 and html.count('class="pass"') == 2
    assert len(list(out.glob("assertion-*.json"))) == 3
    assert robust.load_result(out / "assertion-2.json").robust_accuracy == 0.0
