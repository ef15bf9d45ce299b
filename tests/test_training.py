"""Adversarial training, checkpoints and --resume, and the `robust train` / `--defense` command lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner

import robust
from robust.cli import main
from robust.zoo.loaders import build_architecture
from robust.training import TrainConfig, train


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def small_train() -> Any:
    return robust.load_dataset("mnist", split="train", n=384)


def fresh() -> robust.Classifier:
    torch.manual_seed(0)
    return robust.Classifier(build_architecture("cnn"), device="cpu")


class Stop(Exception):
    """Stands in for a run killed after its first epoch."""


def test_resumed_run_ends_with_the_same_weights(small_train: Any, tmp_path: Path) -> None:
    config = TrainConfig(epochs=2, batch_size=128, seed=1)
    defense = robust.create_defense("adversarial-training", method="fgsm-rs", eps=0.3)
    whole = fresh()
    train(whole, small_train, config, defense=defense)

    def stop_after_first(entry: Any) -> None:
        raise Stop

    ckpt = tmp_path / "run.ckpt"
    killed = fresh()
    with pytest.raises(Stop):
        train(killed, small_train, config, defense=defense, checkpoint=ckpt, on_epoch=stop_after_first)
    resumed = fresh()
    history = train(resumed, small_train, config, defense=defense, checkpoint=ckpt, resume=True)
    assert [h.epoch for h in history] == [1, 2]
    for name, value in whole.module.state_dict().items():
        assert torch.equal(value, resumed.module.state_dict()[name]), name


def test_resume_refuses_other_settings(small_train: Any, tmp_path: Path) -> None:
    ckpt = tmp_path / "run.ckpt"
    train(fresh(), small_train, TrainConfig(epochs=1), checkpoint=ckpt)
    with pytest.raises(robust.RobustError, match="epochs: checkpoint 1, now 2"):
        train(fresh(), small_train, TrainConfig(epochs=2), checkpoint=ckpt, resume=True)
    with pytest.raises(robust.RobustError, match="does not exist"):
        train(fresh(), small_train, TrainConfig(epochs=1), checkpoint=tmp_path / "missing.ckpt", resume=True)


@pytest.mark.parametrize("method", ["pgd", "fgsm-rs"])
def test_training_examples_stay_in_the_ball(method: str, small_train: Any) -> None:
    defense = robust.create_defense("adversarial-training", method=method, eps=0.2, steps=3)
    model = fresh()
    x, y = small_train.x[:32], small_train.y[:32]
    x_adv = defense.perturb(model, x, y, 0.2)
    assert float((x_adv - x).abs().max()) <= 0.2 + 1e-6 and float(x_adv.min()) >= 0 and float(x_adv.max()) <= 1
    loss = torch.nn.functional.cross_entropy
    with torch.no_grad():
        assert float(loss(model(x_adv), y)) > float(loss(model(x), y))


def test_eps_warmup_ramps_linearly() -> None:
    defense = robust.create_defense("adversarial-training", eps=0.3, eps_warmup=3)
    assert [round(defense.eps_at(e), 4) for e in (0, 1.5, 3, 5)] == [0.0, 0.15, 0.3, 0.3]


def test_cli_train_writes_weights_checkpoint_and_summary(tmp_path: Path) -> None:
    out = tmp_path / "cnn-at.pt"
    args = ["train", "--model", "cnn", "--defense", "adversarial-training:method=fgsm-rs", "--eps", "0.3",
            "--n", "256", "--epochs", "1", "--eval-n", "32", "--out", str(out)]
    code, output = run(*args)
    assert code == 0, output
    assert "epoch 1: loss" in output and "PGD-40 robust accuracy" in output
    card = json.loads(out.with_name("cnn-at.pt.json").read_text())
    assert card["config"]["defense"]["params"]["method"] == "fgsm-rs" and card["summary"]["eps"] == 0.3
    model = robust.load_model("cnn", weights=str(out))
    assert model.predict(robust.load_dataset("mnist", n=8).x).shape == (8,)
    code, output = run(*args, "--resume")
    assert code == 0 and "epoch 1" not in output, output  # nothing left to do
    code, output = run(*args)
    assert code == 2 and "--force" in output


@pytest.mark.parametrize(("args", "message"), [
    (["--defense", "jpeg"], "use it with `robust evaluate --defense jpeg`"),
    (["--eps", "0.3"], "--eps applies to adversarial training"),
    (["--model", "lenet"], "unknown architecture 'lenet'"),
    (["--defense", "adversarial-training:method=free"], "method must be one of"),
    (["--epochs", "0"], "--epochs must be a positive integer"),
])
def test_cli_train_errors_are_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    code, output = run("train", "--n", "64", "--out", str(tmp_path / "w.pt"), *args)
    assert code == 2 and message in output and "Traceback" not in output, output


def test_cli_evaluate_with_a_defense_and_naive(tmp_path: Path) -> None:
    code, output = run("evaluate", "--model", "cnn", "--n", "64", "--attack", "pgd:steps=10", "--defense",
                       "jpeg:quality=50", "--naive", "--no-checks", "--out", str(tmp_path / "r"))
    assert code == 0, output
    assert "attacked with bpda gradients" in output and "naive evaluation" in output
    data = json.loads((tmp_path / "r" / "result.json").read_text())
    assert data["defenses"][0]["params"]["quality"] == 50
    assert data["naive"]["robust_accuracy"] > data["robust_accuracy"]


@pytest.mark.parametrize(("args", "message"), [
    (["--defense", "jpg"], "did you mean 'jpeg'"),
    (["--naive"], "add --defense"),
    (["--defense", "adversarial-training"], "produces a model"),
    (["--defense", "jpeg:quality=500"], "quality must be an integer from 1 to 100"),
    (["--detector", "jpeg"], "no detector mode"),
    (["--detector", "feature-squeezing", "--dataset", "data.pt"], "has none; use a dataset with splits"),
])
def test_cli_defense_errors_are_one_line(args: list[str], message: str, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    data = robust.load_dataset("mnist", n=8)
    torch.save({"x": data.x, "y": data.y}, tmp_path / "data.pt")
    code, output = run("evaluate", "--model", "cnn", "--n", "8", "--out", str(tmp_path / "r"), *args)
    assert code == 2 and message in output and "Traceback" not in output, output


def test_cli_detector(tmp_path: Path) -> None:
    code, output = run("evaluate", "--model", "cnn", "--n", "64", "--attack", "pgd:steps=10", "--detector",
                       "feature-squeezing:median=2", "--no-checks", "--out", str(tmp_path / "r"))
    assert code == 0, output
    detection = json.loads((tmp_path / "r" / "result.json").read_text())["detection"]
    assert "train split" in detection["calibration"] and detection["adversarial_n"] > 0


def test_cli_train_fine_tunes_from_weights(tmp_path: Path) -> None:
    base = tmp_path / "base.pt"
    code, output = run("train", "--model", "cnn", "--n", "128", "--epochs", "1", "--eval-n", "0", "--out", str(base))
    assert code == 0, output
    tuned = tmp_path / "tuned.pt"
    code, output = run("train", "--model", "cnn", "--weights", str(base), "--defense", "adversarial-training",
                       "--n", "128", "--epochs", "1", "--eval-n", "0", "--out", str(tuned))
    assert code == 0, output
    card = json.loads(tuned.with_name("tuned.pt.json").read_text())
    assert card["config"]["init"] == str(base)
    before = torch.load(base, weights_only=True)
    after = torch.load(tuned, weights_only=True)
    assert not torch.equal(before["head.3.weight"], after["head.3.weight"])
    code, output = run("train", "--model", "resnet", "--weights", str(base), "--n", "64", "--out", str(tmp_path / "x.pt"))
    assert code == 2 and "do not fit the model" in output
