"""Checks: planted failures trip the check meant for them; the zoo models trip none."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

import robust


class Scaled(nn.Module):
    """Logits multiplied by a huge constant: a saturated softmax, vanishing gradients."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x) * 1e4


class Rounded(nn.Module):
    """Rounds its input to a coarse grid: zero gradients almost everywhere."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(torch.round(x * 4) / 4)


class Noisy(nn.Module):
    """Adds fresh noise to its input on every call."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x + 0.05 * torch.randn_like(x))


def statuses(model: nn.Module, data: Any, attacks: list[str] | None = None, eps: float = 0.1) -> dict[str, str]:
    clf = model if isinstance(model, robust.Classifier) else robust.Classifier(model, device="cpu")
    result = robust.evaluate(clf, (data.x[:80], data.y[:80]), attacks or ["fgsm", "pgd"], eps=eps, checks=True)
    return {c["id"]: c["status"] for c in result.checks}


@pytest.fixture(scope="module")
def net(zoo_cnn: robust.Classifier) -> nn.Module:
    return zoo_cnn.module


@pytest.mark.parametrize(("name", "eps"), [("cnn", 0.1), ("resnet", 0.1), ("cnn-at", 0.3), ("resnet-at", 0.3)])
def test_zoo_models_trip_no_check(name: str, eps: float, mnist500: Any) -> None:
    found = statuses(robust.load_model(name), mnist500, eps=eps)
    assert len(found) == 9
    assert all(s == "pass" for s in found.values()), found


def test_saturated_softmax_trips_gradients(net: nn.Module, mnist500: Any) -> None:
    found = statuses(Scaled(net), mnist500)
    assert found["gradients"] == "fail"


def test_rounded_input_trips_gradients_and_eps_sweep(net: nn.Module, mnist500: Any) -> None:
    found = statuses(Rounded(net), mnist500)
    assert found["gradients"] == "fail"
    assert found["eps-sweep"] == "fail"


def test_noisy_model_trips_randomized_forward(net: nn.Module, mnist500: Any) -> None:
    assert statuses(Noisy(net), mnist500)["randomized-forward"] == "fail"


def test_softmax_outputs_trip_probabilities(net: nn.Module, mnist500: Any) -> None:
    with pytest.warns(UserWarning, match="probabilities"):
        found = statuses(nn.Sequential(net, nn.Softmax(dim=1)), mnist500)
    assert found["probabilities"] == "fail"


def test_strict_exits_3_when_a_check_fails(tmp_path: Any) -> None:
    from click.testing import CliRunner

    from robust.cli import main

    module = tmp_path / "planted_softmax.py"
    module.write_text("import robust\nfrom torch import nn\n"
                      "def build():\n    return nn.Sequential(robust.load_model('cnn').module, nn.Softmax(dim=1))\n")
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        args = ["evaluate", "--model", "planted_softmax:build", "--attack", "fgsm", "--n", "40", "--out", str(tmp_path / "o")]
        strict = CliRunner().invoke(main, [*args, "--strict"])
        relaxed = CliRunner().invoke(main, [*args, "--force"])
    finally:
        sys.path.remove(str(tmp_path))
    assert strict.exit_code == 3, strict.output
    assert "fail: probabilities" in strict.output
    assert relaxed.exit_code == 0
    assert robust.load_result(tmp_path / "o" / "result.json").checks


def test_too_few_steps_trip_loss_still_improving(mnist500: Any) -> None:
    from robust.evaluation.checks import Context, loss_still_improving

    model = robust.load_model("cnn")
    x, y = mnist500.x[:64], mnist500.y[:64]
    short = Context(model, x, y, 0.1, "linf", 0, [robust.create_attack("pgd", steps=10, step_size=0.002)], [])
    assert loss_still_improving(short)["status"] == "warn"
    enough = Context(model, x, y, 0.1, "linf", 0, [robust.create_attack("pgd", steps=40)], [])
    flag = loss_still_improving(enough)
    assert flag["status"] == "pass" and "PGD-40" in flag["message"], flag
