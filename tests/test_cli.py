"""The command line: the demo path, listings, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from robust.cli import main


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_evaluate_writes_json_and_html(tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, output = run("evaluate", "--model", "cnn", "--attack", "fgsm", "--attack", "pgd:steps=10,restarts=1",
                       "--n", "100", "--eps", "0.3", "--out", str(out))
    assert code == 0, output
    assert "worst case" in output and "clean" in output
    data = json.loads((out / "result.json").read_text())
    assert [a["name"] for a in data["attacks"]] == ["fgsm", "pgd"]
    assert data["attacks"][1]["params"]["steps"] == 10
    assert data["n"] == 100 and data["eps"] == 0.3 and data["dataset"] == "mnist"
    assert data["robust_accuracy"] <= 0.05
    html = (out / "report.html").read_text()
    assert "<table" in html and "fgsm" in html


def test_fraction_eps_and_l2(tmp_path: Path) -> None:
    code, output = run("evaluate", "--model", "cnn", "--n", "20", "--eps", "8/255", "--out", str(tmp_path / "a"))
    assert code == 0, output
    assert json.loads((tmp_path / "a" / "result.json").read_text())["eps"] == pytest.approx(8 / 255)
    code, output = run("evaluate", "--model", "cnn", "--n", "20", "--norm", "l2", "--out", str(tmp_path / "b"))
    assert code == 0, output
    assert json.loads((tmp_path / "b" / "result.json").read_text())["eps"] == 2.0


def test_existing_result_needs_force(tmp_path: Path) -> None:
    args = ("evaluate", "--model", "cnn", "--attack", "fgsm", "--n", "10", "--out", str(tmp_path))
    assert run(*args)[0] == 0
    code, output = run(*args)
    assert code == 2 and "--force" in output
    assert run(*args, "--force")[0] == 0


def test_list() -> None:
    code, output = run("list", "attacks")
    assert code == 0 and "pgd" in output and "fgsm" in output
    code, output = run("list", "models")
    assert code == 0 and "resnet" in output and "clean accuracy" in output
    code, output = run("list", "datasets")
    assert code == 0 and "mnist" in output and "CC BY-SA" in output


def test_report_rerenders(tmp_path: Path) -> None:
    assert run("evaluate", "--model", "cnn", "--attack", "fgsm", "--n", "10", "--out", str(tmp_path))[0] == 0
    (tmp_path / "report.html").unlink()
    code, output = run("report", str(tmp_path / "result.json"), "-o", str(tmp_path / "again.html"))
    assert code == 0 and (tmp_path / "again.html").read_text().startswith("<!DOCTYPE html>")


@pytest.fixture
def bad_files(tmp_path: Path) -> dict[str, str]:
    x = np.random.default_rng(0).random((4, 1, 28, 28)).astype(np.float32)
    np.savez(tmp_path / "labels.npz", x=x, y=np.array([0, 1, 2, 12]))
    np.savez(tmp_path / "range.npz", x=x * 255, y=np.array([0, 1, 2, 3]))
    nan = x.copy()
    nan[0, 0, 0, 0] = np.nan
    np.savez(tmp_path / "nan.npz", x=nan, y=np.array([0, 1, 2, 3]))
    return {k: str(tmp_path / f"{k}.npz") for k in ("labels", "range", "nan")} | {"dir": str(tmp_path)}


@pytest.mark.parametrize(("args", "message"), [
    (["--attack", "pgx"], "unknown attack 'pgx' (did you mean 'pgd'"),
    (["--model", "resnte"], "did you mean 'resnet'"),
    (["--dataset", "minst"], "did you mean 'mnist'"),
    (["--eps", "-0.1"], "--eps must be"),
    (["--eps", "abc"], "--eps must be a number"),
    (["--attack", "pgd:stepz=3"], "unknown parameter 'stepz' for attack 'pgd' (did you mean 'steps'"),
    (["--attack", "pgd:steps"], "key=value"),
    (["--attack", "pgd:steps=0"], "steps must be"),
    (["--n", "0"], "--n must be"),
    (["--batch-size", "0"], "--batch-size"),
    (["--weights", "/no/such/weights.pt", "--model", "resnet18"], "not found"),
    (["--dataset", "/no/such/data.npz"], "not found"),
    (["--model", "resnet18"], "needs --weights"),
    (["--model", "no_such_module:net"], "cannot import"),
    (["--norm", "l3"], "l3"),
    (["--device", "tpu"], "unknown device"),
    (["--model", "timm:resnet1000"], "timm has no model 'resnet1000' (did you mean"),
    (["--model", "timm:resnet18:pretrained=true"], "never downloaded"),
    (["--model", "hf:/no/such/folder"], "hf:/no/such/folder: no such folder"),
    (["--model", "cnn", "--mean", "0.5"], "a mean was given without a std"),
    (["--model", "cnn", "--std", "0.5"], "a std was given without a mean"),
    (["--model", "cnn", "--mean", "0.5,0.5", "--std", "0.5"], "2 mean and 1 std"),
    (["--model", "cnn", "--normalization", "cifar10", "--mean", "0.5", "--std", "0.2"], "not both"),
    (["--model", "cnn", "--normalization", "imagenette"], "imagenette"),
    (["--model", "cnn", "--bounds", "1,0"], "LO < HI"),
    (["--model", "cnn", "--bounds", "0"], "--bounds takes LO,HI"),
    (["--model", "cnn", "--bounds", "0,x"], "--bounds takes numbers"),
    (["--model", "cnn", "--std", "0.5,0", "--mean", "0,0"], "every std must be > 0"),
    (["--dataset", "samples:cifar"], "unknown sample set 'cifar' (did you mean"),
    (["--dataset", "samples:cifar10", "--crop", "0"], "--crop must be a positive number of pixels"),
    (["--dataset", "mnist", "--resize", "32"], "--resize and --crop apply to image files"),
    (["--chunk-size", "0"], "chunk size must be a positive integer"),
])
def test_bad_input_is_one_line_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    code, output = run("evaluate", "--n", "8", "--out", str(tmp_path / "o"), *args)
    assert code == 2, output
    assert message in output
    assert "Traceback" not in output
    assert len(output.strip().splitlines()) == 1, output


@pytest.mark.parametrize(("kind", "message"), [
    ("labels", "labels lie in [0, 12]"),
    ("range", "outside the model's bounds"),
    ("nan", "NaN"),
])
def test_bad_data_is_one_line_exit_2(kind: str, message: str, bad_files: dict[str, str]) -> None:
    code, output = run("evaluate", "--model", "cnn", "--dataset", bad_files[kind], "--out", bad_files["dir"] + "/o")
    assert code == 2, output
    assert message in output and len(output.strip().splitlines()) == 1


def test_unknown_command_and_option_are_one_line() -> None:
    for args in (["evaluat"], ["evaluate", "--modle", "cnn"]):
        code, output = run(*args)
        assert code == 2 and len(output.strip().splitlines()) == 1, output


def test_help_does_not_import_torch() -> None:
    code = "import sys; from robust.cli import main; sys.argv = ['robust', '--help']\ntry:\n main()\nexcept SystemExit: pass\nprint('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("False")


def test_minimization_attacks_on_the_cli(tmp_path: Path) -> None:
    code, output = run("evaluate", "--model", "cnn", "--n", "8", "--norm", "l2", "--eps", "2.0", "--out", str(tmp_path),
                       "--attack", "deepfool", "--attack", "cw:steps=20,binary_search_steps=2",
                       "--attack", "boundary:max_queries=300")
    assert code == 0, output
    data = json.loads((tmp_path / "result.json").read_text())
    assert [a["name"] for a in data["attacks"]] == ["deepfool", "cw", "boundary"]
    assert data["attacks"][1]["params"]["steps"] == 20 and data["attacks"][2]["params"]["max_queries"] == 300


def test_l1_evaluation_runs_fmn_and_reports_l1(tmp_path: Path) -> None:
    code, output = run("evaluate", "--model", "cnn", "--n", "20", "--norm", "l1", "--out", str(tmp_path))
    assert code == 0, output
    data = json.loads((tmp_path / "result.json").read_text())
    assert data["norm"] == "l1" and data["eps"] == 10.0 and [a["name"] for a in data["attacks"]] == ["fmn"]
    fmn = data["attacks"][0]
    assert fmn["params"]["norm"] == "l1" and fmn["median_l1"] > fmn["median_l2"] > fmn["median_linf"] > 0
    broken = [s for s in data["samples"] if s["l1"] is not None]
    assert broken and all(s["l1"] >= s["l2"] and s["l0"] >= 1 for s in broken)
    assert [c["status"] for c in data["checks"] if c["id"] == "norm"] == ["warn"]
    assert "median L1" in (tmp_path / "report.html").read_text()


def test_l0_needs_an_attack_that_has_it(tmp_path: Path) -> None:
    code, output = run("evaluate", "--model", "cnn", "--n", "4", "--norm", "l0", "--attack", "pgd", "--out", str(tmp_path))
    assert code == 2 and "attack 'pgd': norm must be one of linf, l2, got 'l0'" in output, output


def test_l0_comparison_with_the_peers(tmp_path: Path) -> None:
    pytest.importorskip("foolbox")
    code, output = run("compare", "--model", "cnn", "--n", "20", "--norm", "l0", "--attack", "fmn:steps=30",
                       "--frameworks", "robust,foolbox,adv-lib", "--out", str(tmp_path))
    assert code == 0, output
    data = json.loads((tmp_path / "result.json").read_text())
    runs = {a["framework"]: a for a in data["attacks"]}
    assert set(runs) >= {"robust", "foolbox"} and all(a["violations"] == 0 for a in runs.values())
    assert runs["robust"]["median_l0"] == int(runs["robust"]["median_l0"]) and runs["robust"]["median_l0"] >= 1
    scores = {(o["attack"], o["framework"]): o["optimality"] for o in data["comparison"]["optimality"]["runs"]}
    assert 0 < scores[("fmn", "robust")] <= 1
