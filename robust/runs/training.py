"""``robust train`` as a function of one options object: weights, a checkpoint per epoch, a card."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from robust.errors import RobustError
from robust.params import parse_number


@dataclass(frozen=True)
class TrainOptions:
    """What ``robust train`` takes (see ``robust train --help``)."""

    out: str
    model: str = "cnn"
    weights: str | None = None
    defense: str | None = None
    eps: str | None = None
    dataset: str = "mnist"
    n: int | None = None
    epochs: int = 10
    batch_size: int = 128
    lr: float = 3e-3
    seed: int = 0
    device: str = "auto"
    resume: bool = False
    force: bool = False
    eval_n: int = 1000
    progress: bool = False


@dataclass
class Trained:
    """Where the weights, the checkpoint and the card went, and the final summary."""

    weights: Path
    checkpoint: Path
    card: Path
    summary: dict[str, Any]


def training_defense(spec: str | None, eps_text: str | None) -> Any:
    """The training defense of ``spec`` with ``--eps`` applied, validated before any data is read."""
    if spec is None:
        if eps_text is not None:
            raise RobustError("--eps applies to adversarial training; add --defense adversarial-training")
        return None
    from robust.registry import create_defense

    extra = {"eps": parse_number(eps_text, "--eps")} if eps_text is not None else {}
    defense = create_defense(spec, **extra)
    if defense.kind != "training":
        raise RobustError(f"defense {defense.name!r} wraps a model at evaluation time; use it with "
                          f"`robust evaluate --defense {defense.name}`, not with `robust train`")
    defense.params  # noqa: B018 - validate now, before loading data
    return defense


def fresh_model(name: str, device: str, weights: str | None) -> Any:
    """A freshly initialized architecture (or one loaded from ``weights``, to fine-tune)."""
    from robust.model import Classifier
    from robust.zoo.loaders import build_architecture, load_state

    net = build_architecture(name)
    if weights is not None:
        load_state(net, Path(weights))
    model = Classifier(net, device=device)
    model.name = name
    return model


def run_train(options: TrainOptions, on_epoch: Callable[[Any], None] | None = None) -> Trained:
    """Train as ``options`` say, checkpointing every epoch; write the weights and ``OUT.json``."""
    from robust.data import in_memory, load_dataset
    from robust.training import TrainConfig, train

    out = Path(options.out)
    if out.exists() and not (options.force or options.resume):
        raise RobustError(f"{out} exists; pass --force to overwrite it or --resume to continue its run")
    defense = training_defense(options.defense, options.eps)
    config = TrainConfig(epochs=options.epochs, batch_size=options.batch_size, lr=options.lr, seed=options.seed,
                         defense=defense.describe() if defense else {}, init=options.weights)
    config.check()
    model = fresh_model(options.model, options.device, options.weights)
    data = in_memory(load_dataset(options.dataset, split="train", n=options.n))
    checkpoint = out.with_name(out.name + ".ckpt")
    history = train(model, data, config, defense=defense, checkpoint=checkpoint, resume=options.resume,
                    progress=options.progress, on_epoch=on_epoch)
    save_weights(model.module, out)
    summary = final_summary(model, options, defense) if options.eval_n else {}
    card = {"model": options.model, "dataset": options.dataset, "config": asdict(config), "summary": summary,
            "history": [asdict(h) for h in history]}
    card_path = out.with_name(out.name + ".json")
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    return Trained(out, checkpoint, card_path, summary)


def save_weights(net: Any, path: Path) -> None:
    """The state dict of ``net``, written atomically."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(net.state_dict(), tmp)
    os.replace(tmp, path)


def final_summary(model: Any, options: TrainOptions, defense: Any) -> dict[str, Any]:
    """Clean and PGD-40 robust accuracy on the first ``eval_n`` test images, at the training eps."""
    from robust.data import load_dataset
    from robust.evaluation import evaluate

    test = load_dataset(options.dataset, n=options.eval_n)
    eps = float(defense.params["eps"]) if defense else (parse_number(options.eps, "--eps") if options.eps else 0.3)
    result = evaluate(model, test, ["pgd"], eps=eps, seed=options.seed)
    return {"clean_accuracy": result.clean_accuracy, "robust_accuracy": result.robust_accuracy, "eps": eps,
            "attack": "pgd (40 steps)", "n": result.n}


def epoch_line(entry: Any) -> str:
    """One line per finished epoch."""
    eps = f", eps {entry.eps:.3g}" if entry.eps else ""
    return f"epoch {entry.epoch}: loss {entry.loss:.4f}, train accuracy {entry.accuracy:.2%}{eps} ({entry.seconds:.0f} s)"


def summary_line(trained: Trained, options: TrainOptions) -> str:
    """What the final summary measured, in one line."""
    s = trained.summary
    return (f"clean accuracy {s['clean_accuracy']:.2%}, PGD-40 robust accuracy {s['robust_accuracy']:.2%} "
            f"at Linf eps {s['eps']:g} on the first {s['n']} {options.dataset} test images")
