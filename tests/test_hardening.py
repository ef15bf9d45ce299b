"""Property-based hardening: every bad input ends in a clear error or a correct result."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import robust
from robust.cli import main

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def cli(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(main, args)
    return result.exit_code, result.output


def assert_clean_exit(code: int, output: str, out: Path) -> None:
    assert code in (0, 2), output
    assert "Traceback" not in output
    if code == 2:
        assert len(output.strip().splitlines()) == 1 and output.startswith("Error: "), output
        assert not (out / "result.json").exists() and not (out / "report.html").exists()
    else:
        assert (out / "result.json").exists() and (out / "report.html").exists()


def eps_is_valid(text: str) -> bool:
    """Oracle: a number or a fraction, finite and >= 0 (what --eps documents)."""
    try:
        value = float(Fraction(text.strip())) if "/" in text else float(text)
    except (ValueError, ZeroDivisionError):
        return False
    return math.isfinite(value) and value >= 0


@FAST
@given(eps=st.one_of(st.text(max_size=8), st.floats(allow_nan=True, allow_infinity=True).map(str),
                     st.fractions(min_value=-2, max_value=2).map(str)))
def test_cli_eps_strings(eps: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    out = tmp_path_factory.mktemp("eps")
    if eps.startswith("-") or eps.strip() == "":
        eps = f" {eps}"  # keep click from reading it as an option or dropping it
    code, output = cli(["evaluate", "--model", "cnn", "--attack", "fgsm", "--n", "4", "--eps", eps, "--out", str(out), "--force"])
    assert_clean_exit(code, output, out)
    assert (code == 0) == eps_is_valid(eps), output
    if code == 2:
        assert "--eps" in output


@FAST
@given(n=st.integers(-5, 30), batch=st.integers(-3, 10**9))
def test_cli_sizes(n: int, batch: int, tmp_path_factory: pytest.TempPathFactory) -> None:
    out = tmp_path_factory.mktemp("sizes")
    code, output = cli(["evaluate", "--model", "cnn", "--attack", "fgsm", "--n", str(n), "--batch-size", str(batch),
                        "--out", str(out)])
    assert_clean_exit(code, output, out)
    assert (code == 0) == (n >= 1 and batch >= 1)


PARAM_VALUES = st.one_of(st.integers(-3, 5), st.floats(-1, 2, allow_nan=False), st.booleans(),
                         st.sampled_from(["ce", "margin", "dlr", "linf", "l2", "x", ""]))


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# Oracle, written from the attacks' documentation: which parameters each attack takes, and what each accepts.
TAKES = {
    "fgsm": {"norm", "loss"},
    "pgd": {"norm", "steps", "step_size", "random_start", "restarts", "loss"},
    "deepfool": {"norm", "steps", "overshoot", "candidates"},
    "cw": {"norm", "steps", "lr", "binary_search_steps", "initial_const", "confidence", "abort_early"},
    "boundary": {"norm", "max_queries", "spherical_step", "source_step", "step_adaptation", "init_draws",
                 "init_steps", "init_bisections", "starting_points"},
}
NORMS = {"fgsm": ("linf", "l2"), "pgd": ("linf", "l2"), "deepfool": ("l2", "linf"), "cw": ("l2",), "boundary": ("l2",)}
ACCEPTS = {
    "steps": lambda v: is_int(v) and v >= 1, "restarts": lambda v: is_int(v) and v >= 1,
    "binary_search_steps": lambda v: is_int(v) and v >= 1, "max_queries": lambda v: is_int(v) and v >= 1,
    "candidates": lambda v: is_int(v) and v >= 2, "step_size": lambda v: is_number(v) and v > 0,
    "lr": lambda v: is_number(v) and v > 0, "overshoot": lambda v: is_number(v) and v >= 0,
    "loss": lambda v: v in ("ce", "margin", "dlr"), "random_start": lambda v: isinstance(v, bool),
}


def invalid_keys(name: str, params: dict[str, Any]) -> list[str]:
    bad = [k for k in params if k not in TAKES[name]]
    bad += [k for k, v in params.items() if k in TAKES[name] and k in ACCEPTS and not ACCEPTS[k](v)]
    if "norm" in params and params["norm"] not in NORMS[name]:
        bad.append("norm")
    return bad


@FAST
@given(name=st.sampled_from(["fgsm", "pgd", "deepfool", "cw", "boundary"]),
       params=st.dictionaries(st.sampled_from(["steps", "step_size", "restarts", "loss", "norm", "random_start",
                                               "overshoot", "candidates", "binary_search_steps", "max_queries",
                                               "lr", "tries"]), PARAM_VALUES, max_size=3))
def test_attack_parameters(name: str, params: dict[str, Any], digits_model: robust.Classifier, digits: Any) -> None:
    attack = robust.create_attack(name, **params)
    capped = {"steps": 3, "max_queries": 50, "binary_search_steps": 1, "candidates": 10}
    for key, cap in capped.items():  # keep each example cheap: large budgets are valid, just slow
        if isinstance(attack.given.get(key), int) and not isinstance(attack.given[key], bool) and attack.given[key] > cap:
            attack = attack.with_params(**{key: cap})
    bad = invalid_keys(name, params)
    try:
        res = attack(digits_model, digits.x[:6], digits.y[:6], eps=0.1)
    except robust.RobustError as exc:
        assert bad, f"{name} refused the valid {params}: {exc}"
        assert any(key in str(exc) for key in bad), f"the message names none of {bad}: {exc}"
        return
    assert not bad, f"{name} accepted {params}, though {bad} are invalid"
    assert res.x_adv.shape == (6, 1, 8, 8) and torch.isfinite(res.x_adv).all()


SHAPES = st.one_of(st.lists(st.integers(0, 4), min_size=1, max_size=5),
                   st.tuples(st.integers(0, 3), st.just(1), st.just(8), st.just(8)).map(list))


@FAST
@given(shape=SHAPES, dtype=st.sampled_from([torch.float32, torch.float64, torch.int64, torch.uint8, torch.bool]),
       fill=st.sampled_from([0.5, math.nan, math.inf, -1.0, 2.0]))
def test_api_inputs(shape: list[int], dtype: torch.dtype, fill: float, digits_model: robust.Classifier) -> None:
    x = torch.full(shape, 0.5).to(dtype) if dtype != torch.bool else torch.zeros(shape, dtype=torch.bool)
    if x.dtype.is_floating_point and x.numel():
        x.view(-1)[0] = fill
    y = torch.zeros(shape[0], dtype=torch.long)
    # Oracle: a non-empty float32 batch (the model's dtype) in the bounds, with 64 values per sample for the MLP.
    valid = (dtype == torch.float32 and fill == 0.5 and len(shape) >= 2 and shape[0] >= 1
             and math.prod(shape[1:]) == 64)
    try:
        result = robust.evaluate(digits_model, (x, y), ["fgsm"], eps=0.1)
    except robust.RobustError as exc:
        assert not valid, f"refused a valid batch of shape {shape}: {exc}"
        return
    assert valid, f"accepted shape {shape}, {dtype}, fill {fill}"
    assert 0 <= result.robust_accuracy <= 1


@FAST
@given(labels=st.one_of(st.lists(st.integers(-2, 12), min_size=4, max_size=4).map(torch.tensor),
                        st.lists(st.floats(0, 9), min_size=4, max_size=4).map(torch.tensor),
                        st.lists(st.booleans(), min_size=4, max_size=4).map(torch.tensor),
                        st.integers(0, 9).map(lambda k: torch.full((3,), k))))
def test_api_labels(labels: torch.Tensor, digits_model: robust.Classifier, digits: Any) -> None:
    valid = labels.dtype == torch.long and len(labels) == 4 and int(labels.min()) >= 0 and int(labels.max()) <= 9
    try:
        result = robust.evaluate(digits_model, (digits.x[:4], labels), ["fgsm"], eps=0.1)
    except robust.RobustError as exc:
        assert not valid, f"refused valid labels {labels.tolist()}: {exc}"
        assert "label" in str(exc)
        return
    assert valid, f"accepted labels {labels.tolist()} ({labels.dtype})"
    assert 0 <= result.robust_accuracy <= result.clean_accuracy


def test_model_that_does_not_fit_the_data(tmp_path: Path) -> None:
    code, output = cli(["evaluate", "--model", "cnn", "--dataset", "digits", "--n", "4", "--out", str(tmp_path)])
    assert code == 2 and "the model failed on inputs of shape (1, 8, 8)" in output
    assert len(output.strip().splitlines()) == 1
