"""train(): standard or adversarial training with a checkpoint after every epoch.

Every epoch draws its batch order and its attack noise from generators seeded by
``(seed, epoch)``, so a run resumed from a checkpoint ends with the same weights as an
uninterrupted run on the same device. Checkpoints are written atomically (a temporary
file, then a rename), so a run killed mid-write leaves the previous epoch's intact.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from robust.data import ArrayDataset
from robust.errors import RobustError
from robust.model import Classifier

CHECKPOINT_VERSION = 1


@dataclass
class TrainConfig:
    """Hyperparameters of a run; a resumed run must match the checkpoint's."""

    epochs: int = 10
    batch_size: int = 128
    lr: float = 3e-3
    seed: int = 0
    defense: dict[str, Any] = field(default_factory=dict)
    init: str | None = None

    def check(self) -> None:
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise RobustError(f"--epochs must be a positive integer, got {self.epochs!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise RobustError(f"--batch-size must be a positive integer, got {self.batch_size!r}")
        if not self.lr > 0:
            raise RobustError(f"--lr must be > 0, got {self.lr!r}")


@dataclass
class EpochLog:
    """What one epoch did: mean training loss and accuracy on the (adversarial) batches."""

    epoch: int
    loss: float
    accuracy: float
    eps: float
    seconds: float


def train(
    model: Classifier,
    data: ArrayDataset,
    config: TrainConfig,
    *,
    defense: Any = None,
    checkpoint: Path | None = None,
    resume: bool = False,
    progress: bool = False,
    on_epoch: Callable[[EpochLog], None] | None = None,
) -> list[EpochLog]:
    """Train ``model.module`` in place with Adam and a one-cycle learning rate.

    Args:
        model: the Classifier to train (its bounds and normalization apply).
        data: training images and labels.
        config: epochs, batch size, peak learning rate, seed.
        defense: an ``adversarial-training`` defense, or None for standard training.
        checkpoint: file written after every epoch (model, optimizer, schedule, history).
        resume: continue from ``checkpoint`` instead of starting over.
        progress: show a progress bar per epoch.
        on_epoch: called with each finished epoch's log.

    Returns:
        The log of every epoch, including those done before a resume.
    """
    config.check()
    net = model.module
    steps_per_epoch = max(1, len(data) // config.batch_size)
    opt = torch.optim.Adam(net.parameters(), lr=config.lr / 10)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch)
    history: list[EpochLog] = []
    if resume:
        history = _restore(checkpoint, config, net, opt, sched)
    for epoch in range(len(history), config.epochs):
        with model.fitting():
            entry = _epoch(model, data, config, epoch, opt, sched, defense, progress)
        history.append(entry)
        if checkpoint is not None:
            _save(checkpoint, config, net, opt, sched, history)
        if on_epoch is not None:
            on_epoch(entry)
    net.eval()
    return history


def _epoch(model: Classifier, data: ArrayDataset, config: TrainConfig, epoch: int, opt: torch.optim.Optimizer,
           sched: Any, defense: Any, progress: bool) -> EpochLog:
    start = time.perf_counter()
    torch.manual_seed(config.seed * 100_003 + epoch)
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(config.seed * 1_000_003 + epoch))
    steps = max(1, len(data) // config.batch_size)
    total_loss, correct, seen, eps = 0.0, 0, 0, 0.0
    bar = tqdm(range(steps), desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch", disable=not progress, leave=False)
    for i in bar:
        idx = order[i * config.batch_size:(i + 1) * config.batch_size]
        x, y = data.x[idx].to(model.device), data.y[idx].to(model.device)
        if defense is not None:
            eps = defense.eps_at(epoch + i / steps)
            x = defense.perturb(model, x, y, eps)
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        total_loss += float(loss.detach()) * len(y)
        correct += int((logits.argmax(1) == y).sum())
        seen += len(y)
        bar.set_postfix(loss=f"{total_loss / seen:.3f}", acc=f"{correct / seen:.3f}")
    return EpochLog(epoch + 1, total_loss / seen, correct / seen, eps, time.perf_counter() - start)


def _save(path: Path, config: TrainConfig, net: nn.Module, opt: torch.optim.Optimizer, sched: Any,
          history: list[EpochLog]) -> None:
    state = {
        "version": CHECKPOINT_VERSION, "config": asdict(config), "model": net.state_dict(),
        "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "history": [asdict(h) for h in history],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _restore(path: Path | None, config: TrainConfig, net: nn.Module, opt: torch.optim.Optimizer,
             sched: Any) -> list[EpochLog]:
    if path is None or not path.exists():
        raise RobustError(f"--resume needs a checkpoint, and {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise RobustError(f"{path} is not a readable training checkpoint: {exc}") from exc
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
        raise RobustError(f"{path} is not a robust training checkpoint")
    saved = {**asdict(TrainConfig()), **state["config"]}  # settings added since the checkpoint take their defaults
    if saved != asdict(config):
        diff = {k: (saved.get(k), v) for k, v in asdict(config).items() if saved.get(k) != v}
        raise RobustError(f"{path} was written with other settings ({_describe(diff)}); "
                          "resume with the same options or start over without --resume")
    net.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    return [EpochLog(**h) for h in state["history"]]


def _describe(diff: dict[str, tuple[Any, Any]]) -> str:
    return ", ".join(f"{k}: checkpoint {old!r}, now {new!r}" for k, (old, new) in diff.items())
