"""Typed hyperparameters: Param checks and text conversion, specs, and their use by attacks, defenses and listings."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from click.testing import CliRunner

import robust
from robust.attack import Attack
from robust.cli import main
from robust.defense import PreprocessingDefense
from robust.params import TENSOR, Param, guess, listing, parse_spec
from robust.registry import ATTACKS, DEFENSES, Registry, declarations

STEPS = Param("steps", int, 40, "gradient steps per restart", low=1)
EPS = Param("eps", float, 0.3, "budget", low=0)
FLAG = Param("random_start", bool, True, "start inside the ball")
LOSS = Param("loss", str, "ce", "the loss", choices=("ce", "margin", "dlr"))
STEP = Param("step_size", float, None, "none: a default", low=0, open_low=True, nullable=True)
START = Param("starting_points", TENSOR, None, "where to start", nullable=True)


def refused(param: Param, value: Any) -> str:
    with pytest.raises(robust.RobustError) as info:
        param.check(value)
    return str(info.value)


def test_int_param() -> None:
    assert STEPS.check(1) == 1 and STEPS.check(500) == 500
    assert STEPS.describe() == "an integer >= 1"
    assert refused(STEPS, 0) == "steps must be an integer >= 1, got 0"
    assert refused(STEPS, True) == "steps must be an integer >= 1, got True"
    assert refused(STEPS, 2.0) == "steps must be an integer >= 1, got 2.0"
    assert refused(STEPS, "3") == "steps must be an integer >= 1, got '3'"
    assert refused(STEPS, None) == "steps must be an integer >= 1, got None"


def test_int_param_from_text() -> None:
    value = STEPS.from_text(" 12 ")
    assert value == 12 and type(value) is int
    for text in ("1.5", "ten", "", "true"):
        with pytest.raises(robust.RobustError, match="steps must be an integer >= 1"):
            STEPS.from_text(text)
    with pytest.raises(robust.RobustError, match="got 0"):
        STEPS.from_text("0")


def test_float_param_takes_ints_but_not_bools() -> None:
    assert EPS.check(1) == 1 and EPS.check(0) == 0 and EPS.check(0.25) == 0.25
    assert EPS.describe() == "a number >= 0"
    assert refused(EPS, True) == "eps must be a number >= 0, got True"
    assert refused(EPS, False) == "eps must be a number >= 0, got False"
    assert refused(EPS, -0.1) == "eps must be a number >= 0, got -0.1"
    for value in (float("nan"), float("inf")):
        assert refused(EPS, value).startswith("eps must be a number >= 0, got ")


def test_float_param_from_text() -> None:
    assert EPS.from_text("8/255") == pytest.approx(8 / 255)
    assert EPS.from_text("0.3") == 0.3
    assert EPS.from_text("1e-2") == pytest.approx(0.01)
    assert EPS.from_text("2") == 2.0
    for text in ("abc", "1/0", "-1", "inf", "nan"):
        with pytest.raises(robust.RobustError, match="eps must be a number >= 0"):
            EPS.from_text(text)


def test_bool_param() -> None:
    assert FLAG.check(True) is True and FLAG.check(False) is False
    assert FLAG.describe() == "True or False"
    assert refused(FLAG, 1) == "random_start must be True or False, got 1"
    assert refused(FLAG, "true") == "random_start must be True or False, got 'true'"
    for text in ("true", "True", " yes ", "1", "on", "YES"):
        assert FLAG.from_text(text) is True, text
    for text in ("false", "FALSE", "no", "0", "off"):
        assert FLAG.from_text(text) is False, text
    with pytest.raises(robust.RobustError, match="random_start must be True or False, got 'maybe'"):
        FLAG.from_text("maybe")


def test_str_param_with_choices() -> None:
    assert LOSS.check("margin") == "margin"
    assert LOSS.describe() == "one of ce, margin, dlr"
    assert refused(LOSS, "hinge") == "loss must be one of ce, margin, dlr, got 'hinge'"
    assert refused(LOSS, 1) == "loss must be one of ce, margin, dlr, got 1"
    assert LOSS.from_text(" dlr ") == "dlr"
    with pytest.raises(robust.RobustError, match="loss must be one of ce, margin, dlr, got 'Margin'"):
        LOSS.from_text("Margin")


def test_nullable_param() -> None:
    assert STEP.check(None) is None
    assert STEP.from_text("none") is None and STEP.from_text(" NULL ") is None
    assert STEP.describe() == "a number > 0 (or none)"
    assert STEP.check(1e-9) == 1e-9
    assert refused(STEP, 0) == "step_size must be a number > 0 (or none), got 0"
    assert STEP.from_text("1/255") == pytest.approx(1 / 255)


def test_tensor_param_only_from_python() -> None:
    points = torch.zeros(2, 1, 8, 8)
    assert START.check(points) is points
    assert START.check(None) is None
    assert START.describe() == "a tensor (or none)"
    assert refused(START, [[0.0]]) == "starting_points must be a tensor (or none), got [[0.0]]"
    with pytest.raises(robust.RobustError, match="starting_points takes a tensor and can only be given from Python"):
        START.from_text("points.pt")
    assert START.from_text("none") is None
    with pytest.raises(robust.RobustError, match="starting_points takes a tensor and can only be given from Python"):
        robust.create_attack("boundary:starting_points=x.pt")


@pytest.mark.parametrize("param,text", [
    (Param("q", int, 75, low=1, high=100), "an integer from 1 to 100"),
    (Param("p", float, 0.5, low=0, high=1, open_high=True), "a number >= 0 and < 1"),
    (Param("p", float, 0.5, low=0, high=1, open_low=True, open_high=True), "a number > 0 and < 1"),
    (Param("p", float, 1.0, high=5), "a number <= 5"),
    (Param("p", float, 1.0, low=0.5, open_low=True), "a number > 0.5"),
    (Param("p", None, 1), "any value"),
])
def test_describe_ranges(param: Param, text: str) -> None:
    assert param.describe() == text


def test_closed_and_open_bounds() -> None:
    closed = Param("q", int, 75, low=1, high=100)
    assert closed.check(1) == 1 and closed.check(100) == 100
    assert refused(closed, 0) == "q must be an integer from 1 to 100, got 0"
    assert refused(closed, 101) == "q must be an integer from 1 to 100, got 101"
    half_open = Param("p", float, 0.5, low=0, high=1, open_high=True)
    assert half_open.check(0) == 0 and half_open.check(0.999) == 0.999
    assert refused(half_open, 1) == "p must be a number >= 0 and < 1, got 1"
    both_open = Param("p", float, 0.5, low=0, high=1, open_low=True, open_high=True)
    assert refused(both_open, 0.0) == "p must be a number > 0 and < 1, got 0.0"
    assert both_open.check(1e-6) == 1e-6


def test_untyped_param_accepts_anything_and_guesses_text() -> None:
    free = Param("anything", None, 3, nullable=True)
    for value in (True, "x", 2.5, None, [1]):
        assert free.check(value) == value
    assert free.from_text("7") == 7


def test_guess() -> None:
    assert guess("3") == 3 and type(guess("3")) is int
    assert guess("-2") == -2
    assert guess("2.5") == 2.5 and guess("1e-3") == pytest.approx(1e-3)
    assert guess("8/255") == pytest.approx(8 / 255)
    assert guess("true") is True and guess("FALSE") is False
    assert guess("none") is None and guess("null") is None
    assert guess("fast") == "fast"
    assert guess("fgsm-rs") == "fgsm-rs"


def test_parse_spec() -> None:
    assert parse_spec("pgd:steps=10,random-start=false") == ("pgd", {"steps": "10", "random_start": "false"})
    assert parse_spec("pgd") == ("pgd", {})
    assert parse_spec("pgd:") == ("pgd", {})
    assert parse_spec(" pgd : steps = 10 , restarts=2,") == ("pgd", {"steps": "10", "restarts": "2"})
    # dashes become underscores in keys only: plugin names and values keep theirs
    assert parse_spec("adversarial-training:method=fgsm-rs,eps-warmup=2") == (
        "adversarial-training", {"method": "fgsm-rs", "eps_warmup": "2"})
    assert parse_spec("pgd:step_size=8/255") == ("pgd", {"step_size": "8/255"})


@pytest.mark.parametrize("spec,message", [
    ("pgd:steps", "parameters must look like name:key=value"),
    ("pgd:steps=10,restarts", "parameters must look like name:key=value"),
    ("pgd:=3", "parameters must look like name:key=value"),
    (":steps=3", "a spec starts with a name"),
    ("", "a spec starts with a name"),
])
def test_parse_spec_errors(spec: str, message: str) -> None:
    with pytest.raises(robust.RobustError, match=message):
        parse_spec(spec)


def test_spec_values_are_typed() -> None:
    attack = robust.create_attack("pgd:steps=10,loss=margin,random-start=false,step-size=8/255,restarts=2")
    params = attack.check_hyperparameters()
    assert params["steps"] == 10 and type(params["steps"]) is int
    assert params["restarts"] == 2 and type(params["restarts"]) is int
    assert params["loss"] == "margin"
    assert params["random_start"] is False
    assert params["step_size"] == pytest.approx(8 / 255) and type(params["step_size"]) is float
    assert params["norm"] == "linf"  # not given: the declared default


def test_spec_none_keeps_the_default() -> None:
    attack = robust.create_attack("pgd:step_size=none")
    assert attack.params["step_size"] is None
    assert "step_size" not in attack.given


def test_a_none_keyword_keeps_the_spec_value() -> None:
    assert robust.create_attack("pgd:steps=10", steps=None).params["steps"] == 10


def test_a_key_given_twice_is_refused() -> None:
    for spec in ("pgd:steps=10,steps=20", "pgd:random-start=false,random_start=true"):
        with pytest.raises(robust.RobustError, match="given twice"):
            robust.create_attack(spec)


def test_keywords_override_the_spec() -> None:
    attack = robust.create_attack("pgd:steps=10,loss=margin", steps=5)
    assert attack.params["steps"] == 5
    assert attack.params["loss"] == "margin"
    assert robust.create_attack("pgd:loss=margin", loss="dlr").params["loss"] == "dlr"


@pytest.mark.parametrize("name", ["pgd", "deepfool", "cw"])
def test_a_bool_step_count_is_refused_from_python_and_from_a_spec(name: str) -> None:
    with pytest.raises(robust.RobustError, match=r"steps must be an integer >= 1, got True$"):
        robust.create_attack(name, steps=True).check_hyperparameters()
    with pytest.raises(robust.RobustError, match=r"steps must be an integer >= 1, got 'true'$"):
        robust.create_attack(f"{name}:steps=true")


@pytest.mark.parametrize("name", ["pgd", "deepfool", "cw"])
def test_the_same_bad_value_gives_the_same_message(name: str) -> None:
    with pytest.raises(robust.RobustError) as from_python:
        robust.create_attack(name, steps=0).check_hyperparameters()
    with pytest.raises(robust.RobustError) as from_spec:
        robust.create_attack(f"{name}:steps=0")
    assert str(from_python.value) == str(from_spec.value)
    assert str(from_python.value).endswith("steps must be an integer >= 1, got 0")


def test_a_refused_value_stops_the_attack_before_any_pass(digits_model: robust.Classifier, digits: Any) -> None:
    before = digits_model.counter.forward
    with pytest.raises(robust.RobustError, match="steps must be an integer >= 1, got True"):
        robust.create_attack("pgd", steps=True)(digits_model, digits.x[:4], digits.y[:4], eps=0.1)
    assert digits_model.counter.forward == before


def test_unknown_parameter_names_the_closest_one() -> None:
    for attack in (robust.create_attack("pgd", stepz=3), robust.create_attack("pgd:stepz=3")):
        with pytest.raises(robust.RobustError,
                           match=r"unknown parameter 'stepz' for attack 'pgd' \(did you mean 'steps'"):
            attack.check_hyperparameters()
    with pytest.raises(robust.RobustError, match=r"unknown parameter 'steps' for attack 'fgsm'; it takes loss, norm$"):
        robust.create_attack("fgsm:steps=3").check_hyperparameters()
    with pytest.raises(robust.RobustError, match="unknown parameters 'a', 'b' for attack 'deepfool'"):
        robust.create_attack("deepfool", b=1, a=2).check_hyperparameters()


def test_defense_spec_values_are_typed() -> None:
    jpeg = robust.create_defense("jpeg:quality=50")
    assert jpeg.params["quality"] == 50 and type(jpeg.params["quality"]) is int
    assert jpeg.params["backend"] == "tensor"
    assert robust.create_defense("jpeg:quality=50", quality=20).params["quality"] == 20
    training = robust.create_defense("adversarial-training:method=fgsm-rs,eps=8/255,eps-warmup=2")
    assert training.params["method"] == "fgsm-rs"
    assert training.params["eps"] == pytest.approx(8 / 255)
    assert training.params["eps_warmup"] == 2


def test_bad_quality_is_refused_the_same_way(digits_model: robust.Classifier) -> None:
    messages = []
    for make in (lambda: robust.create_defense("jpeg", quality=0).params,
                 lambda: robust.create_defense("jpeg:quality=0"),
                 lambda: robust.create_defense("jpeg", quality=0).wrap(digits_model)):
        with pytest.raises(robust.RobustError) as info:
            make()
        messages.append(str(info.value))
    assert messages[0] == messages[1] == messages[2]
    assert messages[0].endswith("quality must be an integer from 1 to 100, got 0")
    with pytest.raises(robust.RobustError, match="quality must be an integer from 1 to 100, got True"):
        robust.create_defense("jpeg", quality=True).params
    with pytest.raises(robust.RobustError, match="quality must be an integer from 1 to 100, got 'high'"):
        robust.create_defense("jpeg:quality=high")
    with pytest.raises(robust.RobustError,
                       match=r"unknown parameter 'qualty' for defense 'jpeg' \(did you mean 'quality'"):
        robust.create_defense("jpeg", qualty=50).params


def test_gradient_choices_are_per_defense() -> None:
    assert robust.create_defense("jpeg").gradient == "bpda"
    assert robust.create_defense("jpeg:gradient=approx").gradient == "approx"
    assert robust.create_defense("spatial-smoothing", gradient="exact").gradient == "exact"
    with pytest.raises(robust.RobustError, match="gradient must be one of bpda, exact \\(or none\\), got 'approx'$"):
        robust.create_defense("spatial-smoothing", gradient="approx").params
    with pytest.raises(robust.RobustError,
                       match="gradient must be one of bpda, approx, exact \\(or none\\), got 'eot'$"):
        robust.create_defense("jpeg:gradient=eot")
    for name in ("jpeg", "spatial-smoothing", "feature-squeezing"):
        cls = DEFENSES.get(name)
        gradient = {p.name: p for p in declarations(cls)}["gradient"]
        assert gradient.choices == cls.gradient_modes


class Noisy(PreprocessingDefense):
    """A randomized defense for the EOT defaults."""

    name = "noisy"
    randomized = True
    gradient_modes = ("eot", "exact")

    def transform(self, x: torch.Tensor, bounds: tuple[float, float] = (0.0, 1.0)) -> torch.Tensor:
        return x


def test_eot_samples() -> None:
    assert robust.create_defense("jpeg").eot_samples == 1
    assert robust.create_defense("jpeg:eot-samples=4").eot_samples == 4
    assert robust.create_defense("jpeg:eot_samples=none").eot_samples == 1
    assert Noisy().eot_samples == 8 and Noisy().gradient == "eot"
    assert Noisy(eot_samples=3).eot_samples == 3
    with pytest.raises(robust.RobustError, match="eot_samples must be an integer >= 1 \\(or none\\), got 0$"):
        robust.create_defense("jpeg:eot_samples=0")
    with pytest.raises(robust.RobustError, match="eot_samples must be an integer >= 1 \\(or none\\), got 0$"):
        Noisy(eot_samples=0).eot_samples
    with pytest.raises(robust.RobustError, match="eot_samples must be an integer >= 1 \\(or none\\), got 2.5"):
        Noisy(eot_samples=2.5).params


def default_text(value: Any) -> str:
    return "none" if value is None else repr(value) if isinstance(value, str) else str(value)


def test_listing_lines() -> None:
    pgd = declarations(ATTACKS.get("pgd"))
    lines = listing(pgd)
    assert len(lines) == len(pgd)
    for param, line in zip(pgd, lines):
        assert line.startswith(f"{param.name}: {param.describe()}; default {default_text(param.default)}"), line
        assert line.endswith(param.doc)
    assert any(line.startswith("steps: an integer >= 1; default 40") for line in lines)
    assert any(line.startswith("step_size: a number > 0 (or none); default none") for line in lines)
    assert any(line.startswith("loss: one of ce, margin, dlr; default 'ce'") for line in lines)
    assert any(line.startswith("random_start: True or False; default True") for line in lines)
    assert listing([Param("bare", int, 3)]) == ["bare: an integer; default 3"]


def blocks(output: str) -> dict[str, list[str]]:
    """``robust list`` output: per unindented name, its indented detail lines."""
    found: dict[str, list[str]] = {}
    name = ""
    for line in output.splitlines():
        if line and not line[0].isspace():
            name = line.split()[0]
            found[name] = []
        elif line.strip():
            found[name].append(line.strip())
    return found


def test_list_attacks_prints_every_attack_with_its_parameters() -> None:
    result = CliRunner().invoke(main, ["list", "attacks"])
    assert result.exit_code == 0, result.output
    found = blocks(result.output)
    names = robust.list_attacks()
    assert {"fgsm", "pgd", "deepfool", "cw", "boundary"} <= set(names)
    assert set(found) == set(names)
    for name in names:
        assert found[name] == listing(declarations(ATTACKS.get(name))), name
    assert any(line.startswith("steps: an integer >= 1; default 40") for line in found["pgd"])
    assert not any(line.startswith("steps:") for line in found["fgsm"])


def test_list_defenses_shows_the_gradient_parameters() -> None:
    result = CliRunner().invoke(main, ["list", "defenses"])
    assert result.exit_code == 0, result.output
    found = blocks(result.output)
    assert set(found) == set(robust.list_defenses())
    assert any(line.startswith("quality: an integer from 1 to 100; default 75") for line in found["jpeg"])
    jpeg_gradient = "gradient: one of bpda, approx, exact (or none); default none"
    assert any(line.startswith(jpeg_gradient) for line in found["jpeg"])
    assert any(line.startswith("gradient: one of bpda, exact (or none)") for line in found["spatial-smoothing"])
    assert not any(line.startswith("gradient:") for line in found["adversarial-training"])


class OldStyle(Attack):
    """An attack written against the older interface: defaults only."""

    name = "old-style"
    defaults = {"steps": 5, "scale": 0.5, "mode": "fast", "flag": False, "extra": None}

    def run(self, model: Any, x: torch.Tensor, y: torch.Tensor, *, eps: float | None, targeted: bool,
            generator: torch.Generator) -> torch.Tensor:
        self.seen = self.params
        return x


def old_registry() -> Registry[Any]:
    registry: Registry[Any] = Registry("robust.none", "attack")
    registry.register("old-style", OldStyle)
    return registry


def test_old_style_defaults_become_untyped_parameters() -> None:
    params = declarations(OldStyle)
    assert [p.name for p in params] == ["steps", "scale", "mode", "flag", "extra"]
    assert all(p.type is None and p.nullable for p in params)
    assert OldStyle.defaults == {"steps": 5, "scale": 0.5, "mode": "fast", "flag": False, "extra": None}
    assert OldStyle(steps="anything").check_hyperparameters()["steps"] == "anything"
    assert listing(params)[0] == "steps: any value (or none); default 5"


def test_old_style_spec_values_are_guessed() -> None:
    attack = old_registry().create("old-style:steps=7,scale=8/255,mode=slow,flag=true,extra=2.5")
    params = attack.check_hyperparameters()
    assert params["steps"] == 7 and type(params["steps"]) is int
    assert params["scale"] == pytest.approx(8 / 255)
    assert params["mode"] == "slow"
    assert params["flag"] is True
    assert params["extra"] == 2.5
    assert old_registry().create("old-style:steps=none").params["steps"] == 5


def test_old_style_unknown_parameters_are_refused(digits_model: robust.Classifier, digits: Any) -> None:
    attack = old_registry().create("old-style:stpes=3")
    with pytest.raises(robust.RobustError,
                       match=r"unknown parameter 'stpes' for attack 'old-style' \(did you mean 'steps'"):
        attack(digits_model, digits.x[:4], digits.y[:4], eps=0.1)
    ok = old_registry().create("old-style:steps=3")
    result = ok(digits_model, digits.x[:4], digits.y[:4], eps=0.1)
    assert ok.seen["steps"] == 3
    assert torch.equal(result.x_adv, digits.x[:4])


def test_new_style_defaults_follow_the_declarations() -> None:
    for name in robust.list_attacks():
        cls = ATTACKS.get(name)
        assert cls.defaults == {p.name: p.default for p in declarations(cls)}, name
    assert ATTACKS.get("fgsm").norms == ("linf", "l2")
    assert ATTACKS.get("cw").norms == ("l2",)
