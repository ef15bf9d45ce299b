"""Scale: resuming a killed run, sharding over torchrun ranks, OOM splitting, bf16 and torch.compile."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

import robust
from robust.attack import Attack
from robust.testing import small_digits_model

RUN = ["--model", "cnn", "--attack", "fgsm", "--attack", "pgd:steps=20", "--samples", "300", "--batch-size", "50",
       "--eps", "0.1", "--no-checks", "--device", "cpu"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def robust_cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "robust", "evaluate", *args]


def comparable(path: Path) -> dict[str, Any]:
    """A result without what legitimately differs between runs: timings, memory, environment."""
    data = json.loads(path.read_text())
    data.pop("environment")
    for attack in data["attacks"]:
        attack.pop("seconds")
        attack.pop("peak_memory_mb")
    return data


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("whole") / "run"
    subprocess.run(robust_cli(*RUN, "--out", str(out)), env=ENV, check=True, capture_output=True, timeout=300)
    return comparable(out / "result.json")


def test_sigkilled_run_resumes_to_the_same_result(uninterrupted: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "run"
    state = out / ".state.pt"
    proc = subprocess.Popen(robust_cli(*RUN, "--out", str(out)), env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not state.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert state.exists() and not (out / "result.json").exists(), "the run was not killed mid-way"
    done = subprocess.run(robust_cli(*RUN, "--out", str(out), "--resume"), env=ENV, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert comparable(out / "result.json") == uninterrupted
    assert not state.exists(), "the state file is removed once the result is written"
    again = subprocess.run(robust_cli(*RUN, "--out", str(out), "--resume"), env=ENV, capture_output=True, text=True)
    assert again.returncode == 2 and "the run finished" in again.stderr


def test_resume_refuses_a_state_of_another_run(tmp_path: Path, digits: Any) -> None:
    state = tmp_path / "state.pt"
    model = small_digits_model()
    robust.evaluate(model, (digits.x[:40], digits.y[:40]), ["fgsm"], eps=0.1, checkpoint=state)
    with pytest.raises(robust.RobustError, match="another model, dataset or settings"):
        robust.evaluate(model, (digits.x[:30], digits.y[:30]), ["fgsm"], eps=0.1, checkpoint=state, resume=True)
    with pytest.raises(robust.RobustError, match="pass checkpoint=PATH"):
        robust.evaluate(model, (digits.x[:30], digits.y[:30]), ["fgsm"], eps=0.1, resume=True)


def test_resume_refuses_a_state_of_another_version_and_resumes_l1(tmp_path: Path, digits: Any) -> None:
    """Every finished batch keeps its sizes in all four norms; an L1 run resumed from its state
    gives the same result, and a state from the older format (L2 and Linf only) is refused."""
    state = tmp_path / "state.pt"
    model, data = small_digits_model(), (digits.x[:40], digits.y[:40])
    first = robust.evaluate(model, data, ["fmn:norm=l1,steps=20"], eps=2.0, norm="l1", checkpoint=state)
    again = robust.evaluate(model, data, ["fmn:norm=l1,steps=20"], eps=2.0, norm="l1", checkpoint=state, resume=True)
    assert again.samples == first.samples and again.attacks[0].median_l1 == first.attacks[0].median_l1
    assert any(s["l1"] is not None for s in first.samples)
    old = torch.load(state, weights_only=True)
    torch.save({**old, "version": 1}, state)
    with pytest.raises(robust.RobustError, match="another version of robust"):
        robust.evaluate(model, data, ["fmn:norm=l1,steps=20"], eps=2.0, norm="l1", checkpoint=state, resume=True)


def test_torchrun_two_ranks_write_the_single_process_result(uninterrupted: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "robust", "evaluate", *RUN, "--out", str(out)]
    done = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert comparable(out / "result.json") == uninterrupted
    assert done.stdout.count("wrote ") == 1, "only rank 0 writes"


def test_torchrun_splits_streamed_chunks_and_writes_the_single_process_result(tmp_path: Path) -> None:
    """Image files read in several chunks: each rank reads and attacks only its own chunks."""
    from torchvision.io import write_png

    from tests.fixtures.cifar_nets import normalized

    images = robust.load_dataset("samples:cifar10")
    x = torch.stack([images[i][0] for i in range(len(images))])
    labels = normalized().predict(x).tolist()  # the model's own labels: every point starts correct
    for k in range(10):
        (tmp_path / "data" / str(k)).mkdir(parents=True)
    for i, label in enumerate(labels):
        write_png((x[i] * 255).round().to(torch.uint8), str(tmp_path / "data" / str(label) / f"{i:02d}.png"))
    run = ["--model", "tests.fixtures.cifar_nets:normalized", "--dataset", str(tmp_path / "data"), "--chunk-size", "6",
           "--workers", "0", "--attack", "fgsm", "--attack", "pgd:steps=5", "--eps", "0.1", "--batch-size", "4",
           "--no-checks", "--device", "cpu"]
    single = tmp_path / "single"
    subprocess.run(robust_cli(*run, "--out", str(single)), env=ENV, check=True, capture_output=True, timeout=300)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "robust", "evaluate", *run, "--out", str(tmp_path / "two")]
    done = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    two = comparable(tmp_path / "two" / "result.json")
    assert two == comparable(single / "result.json") and two["n"] == 20
    assert any(s["broken_by"] for s in two["samples"]), "the attacks broke some points"


class ChokesOnLargeBatches(Attack):
    """FGSM that raises CUDA's out-of-memory error on batches of more than 8 points."""

    name = "choking-fgsm"
    defaults = {"norm": "linf"}

    def run(self, model: Any, x: torch.Tensor, y: torch.Tensor, *, eps: Any, targeted: bool, generator: Any) -> Any:
        if len(x) > 8:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return robust.create_attack("fgsm").run(model, x, y, eps=eps, targeted=targeted, generator=generator)


def test_out_of_memory_halves_the_batch_and_loses_nothing(digits: Any, caplog: pytest.LogCaptureFixture) -> None:
    model = small_digits_model()
    data = (digits.x[:100], digits.y[:100])
    expected = robust.evaluate(model, data, ["fgsm"], eps=0.1, batch_size=8)
    with caplog.at_level("WARNING"):
        result = robust.evaluate(model, data, [ChokesOnLargeBatches()], eps=0.1, batch_size=64)
    assert "out of memory: retrying choking-fgsm with batches of 8" in caplog.text
    assert result.attacks[0].attacked == expected.attacks[0].attacked
    assert [s["broken_by"] is None for s in result.samples] == [s["broken_by"] is None for s in expected.samples]


def test_auto_batch_size_on_the_cpu(digits: Any) -> None:
    passes = {size: robust.evaluate(small_digits_model(), (digits.x[:300], digits.y[:300]), ["fgsm"], eps=0.1,
                                    batch_size=size).attacks[0].forward_passes for size in ("auto", 256, 300)}
    assert passes["auto"] == passes[256] > passes[300], passes
    with pytest.raises(robust.RobustError, match="positive integer or 'auto'"):
        robust.evaluate(small_digits_model(), (digits.x, digits.y), ["fgsm"], eps=0.1, batch_size="big")


@pytest.mark.cuda
def test_bf16_attack_steps_with_fp32_judging(zoo_cnn: robust.Classifier, mnist500: Any) -> None:
    x, y = mnist500.x[:200].to(zoo_cnn.device), mnist500.y[:200].to(zoo_cnn.device)
    pgd = robust.create_attack("pgd", steps=40)
    fp32 = pgd(zoo_cnn, x, y, eps=0.1, seed=0)
    fast = robust.load_model("cnn", device=zoo_cnn.device).accelerate("bf16")
    bf16 = pgd(fast, x, y, eps=0.1, seed=0)
    assert torch.equal(bf16.success, zoo_cnn.predict(bf16.x_adv) != y), "success judged in fp32"
    gap = abs(float(bf16.success.float().mean()) - float(fp32.success.float().mean()))
    assert gap <= 0.01, f"bf16 and fp32 PGD-40 differ by {gap:.1%}"
    with torch.enable_grad():
        probe = x[:4].clone().requires_grad_(True)
        assert fast(probe).dtype == torch.float32


def test_confirm_rechecks_only_approximate_gradient_passes(digits: Any) -> None:
    from robust.attack import confirm

    model = small_digits_model()
    x, y = digits.x[:16], digits.y[:16]
    claimed = torch.ones(16, dtype=torch.bool)  # a gradient pass that calls every point fooled
    before = model.counter.forward
    assert torch.equal(confirm(model, x, claimed, lambda rows, z: z.argmax(1) != y[rows]), claimed)
    assert model.counter.forward == before, "exact gradient passes cost no re-check"
    fast = robust.Classifier(small_digits_model().module, device="cpu").accelerate("bf16")
    checked = confirm(fast, x, claimed, lambda rows, z: z.argmax(1) != y[rows])
    assert torch.equal(checked, model.predict(x) != y)


def test_cli_precision_and_batch_size_errors(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from robust.cli import main

    result = CliRunner().invoke(main, ["evaluate", "--batch-size", "huge", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "--batch-size must be a positive integer or auto" in result.output
    result = CliRunner().invoke(main, ["evaluate", "--precision", "fp8", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "fp8" in result.output
    result = CliRunner().invoke(main, ["evaluate", "--resume"])
    assert result.exit_code == 2 and "--resume continues the run in --out DIR" in result.output


@pytest.mark.slow
def test_compiled_model_gives_the_same_result(digits: Any) -> None:
    data = (digits.x[:64], digits.y[:64])
    eager = robust.evaluate(small_digits_model(), data, ["pgd"], eps=0.1)
    compiled = robust.Classifier(small_digits_model().module, device="cpu").accelerate(compile=True)
    result = robust.evaluate(compiled, data, ["pgd"], eps=0.1)
    assert abs(result.robust_accuracy - eager.robust_accuracy) <= 0.02
