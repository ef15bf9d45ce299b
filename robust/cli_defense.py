"""``robust train``: standard or adversarial training with checkpoints and a final summary."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from robust.cli import Command, main, parse_attack, parse_number, user_errors
from robust.errors import RobustError


@main.command(cls=Command)
@click.option("--model", "model_name", default="cnn", show_default=True,
              help="Architecture to train from scratch: a zoo name or package.module:attr.")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False),
              help="Start from these weights (a state dict) instead of a fresh initialization, to fine-tune.")
@click.option("--defense", "defense_spec", help="A training defense, e.g. adversarial-training:method=pgd.")
@click.option("--eps", "eps_text", help="Training eps (Linf, input space); overrides the defense's eps.")
@click.option("--dataset", default="mnist", show_default=True, help="Dataset whose train split is used.")
@click.option("--n", "n", type=int, help="Use only the first N training samples [default: all].")
@click.option("--epochs", type=int, default=10, show_default=True)
@click.option("--batch-size", type=int, default=128, show_default=True)
@click.option("--lr", type=float, default=3e-3, show_default=True, help="Peak learning rate (Adam, one-cycle).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Weights file (state dict) to write.")
@click.option("--resume", is_flag=True, help="Continue from OUT.ckpt, the checkpoint written after every epoch.")
@click.option("--force", is_flag=True, help="Overwrite an existing OUT.")
@click.option("--eval-n", type=int, default=1000, show_default=True,
              help="Test images for the final clean and PGD-40 summary (0 skips it).")
@click.option("--progress/--no-progress", default=None, help="Progress bars [default: when stderr is a terminal].")
def train(model_name: str, weights: str | None, defense_spec: str | None, eps_text: str | None, dataset: str, n: int | None, epochs: int,
          batch_size: int, lr: float, seed: int, device: str, out: str, resume: bool, force: bool, eval_n: int,
          progress: bool | None) -> None:
    """Train a model (adversarially with --defense); checkpoint every epoch, summarize at the end."""
    with user_errors():
        out_path = Path(out)
        if out_path.exists() and not (force or resume):
            raise RobustError(f"{out_path} exists; pass --force to overwrite it or --resume to continue its run")
        defense = _training_defense(defense_spec, eps_text)
        from robust.data import load_dataset
        from robust.training import TrainConfig
        from robust.training import train as run_training

        config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                             defense=defense.describe() if defense else {}, init=weights)
        config.check()
        model = _fresh_model(model_name, device, weights)
        data = load_dataset(dataset, split="train", n=n)
        checkpoint = out_path.with_name(out_path.name + ".ckpt")
        show = sys.stderr.isatty() if progress is None else progress
        history = run_training(model, data, config, defense=defense, checkpoint=checkpoint, resume=resume,
                               progress=show, on_epoch=_echo_epoch)
        _save_weights(model.module, out_path)
        summary = _summary(model, dataset, eval_n, defense, eps_text, seed) if eval_n else {}
        card = {"model": model_name, "dataset": dataset, "config": config.__dict__, "summary": summary,
                "history": [h.__dict__ for h in history]}
        out_path.with_name(out_path.name + ".json").write_text(json.dumps(card, indent=2) + "\n")
        click.echo(f"wrote {out_path} (checkpoint {checkpoint}, summary {out_path.name}.json)")


def _training_defense(spec: str | None, eps_text: str | None) -> Any:
    if spec is None:
        if eps_text is not None:
            raise RobustError("--eps applies to adversarial training; add --defense adversarial-training")
        return None
    from robust.registry import create_defense

    name, params = parse_attack(spec)
    if eps_text is not None:
        params["eps"] = parse_number(eps_text, "--eps")
    defense = create_defense(name, **params)
    if defense.kind != "training":
        raise RobustError(f"defense {name!r} wraps a model at evaluation time; use it with "
                          f"`robust evaluate --defense {name}`, not with `robust train`")
    defense.params  # noqa: B018 - validate now, before loading data
    return defense


def _fresh_model(name: str, device: str, weights: str | None) -> Any:
    from pathlib import Path

    from robust.loaders import build_architecture, load_state
    from robust.model import Classifier

    net = build_architecture(name)
    if weights is not None:
        load_state(net, Path(weights))
    model = Classifier(net, device=device)
    model.name = name
    return model


def _save_weights(net: Any, path: Path) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(net.state_dict(), tmp)
    os.replace(tmp, path)


def _echo_epoch(entry: Any) -> None:
    eps = f", eps {entry.eps:.3g}" if entry.eps else ""
    click.echo(f"epoch {entry.epoch}: loss {entry.loss:.4f}, train accuracy {entry.accuracy:.2%}{eps} "
               f"({entry.seconds:.0f} s)")


def _summary(model: Any, dataset: str, n: int, defense: Any, eps_text: str | None, seed: int) -> dict[str, Any]:
    from robust.data import load_dataset
    from robust.evaluation import evaluate

    test = load_dataset(dataset, n=n)
    eps = float(defense.params["eps"]) if defense else (parse_number(eps_text, "--eps") if eps_text else 0.3)
    result = evaluate(model, (test.x, test.y), ["pgd"], eps=eps, seed=seed)
    click.echo(f"clean accuracy {result.clean_accuracy:.2%}, PGD-40 robust accuracy {result.robust_accuracy:.2%} "
               f"at Linf eps {eps:g} on the first {result.n} {dataset} test images")
    return {"clean_accuracy": result.clean_accuracy, "robust_accuracy": result.robust_accuracy, "eps": eps,
            "attack": "pgd (40 steps)", "n": result.n}


def apply_defenses(model: Any, specs: tuple[str, ...], naive: bool) -> Any:
    """``model`` behind each preprocessing defense of ``specs``, in order."""
    from robust.registry import create_defense

    if naive and not specs:
        raise RobustError("--naive compares against a defense's true gradients: add --defense")
    for spec in specs:
        name, params = parse_attack(spec)
        defense = create_defense(name, **params)
        if defense.kind != "preprocessing":
            raise RobustError(f"defense {name!r} produces a model: train it with `robust train --defense {name}` "
                              "and evaluate the trained weights")
        model = defense.wrap(model)
    return model


def calibrated_detector(spec: str | None, model: Any, dataset: str, n: int = 1000) -> Any:
    """The detector of ``spec`` around ``model``, calibrated on ``n`` clean train-split images."""
    if spec is None:
        return None
    from robust.data import has_splits, load_dataset
    from robust.registry import create_defense

    name, params = parse_attack(spec)
    defense = create_defense(name, **params)
    if not hasattr(defense, "detector"):
        raise RobustError(f"defense {name!r} has no detector mode")
    if not has_splits(dataset):
        raise RobustError(f"--detector calibrates on held-out clean images from a train split, and {dataset!r} "
                          "has none; use a dataset with splits (mnist, digits, mnist:ROOT, cifar10:ROOT) or "
                          "calibrate from Python with detector.calibrate(x_clean)")
    detector = defense.detector(model)
    clean = load_dataset(dataset, split="train", n=n)
    detector.calibrate(clean.x)
    detector.calibration = f"the first {len(clean)} images of the {clean.name} train split"
    return detector


def echo_defenses(result: Any) -> None:
    """Print the defenses, the naive robust accuracy and the detector's rates, when present."""
    for d in result.defenses:
        click.echo(f"defense {d['name']} ({', '.join(f'{k}={v}' for k, v in d['params'].items())}): "
                   f"attacked with {d['gradient']} gradients")
    for entry in result.sweep or []:
        per = ", ".join(f"{a['name']} {a['robust_accuracy']:.2%}" for a in entry["attacks"])
        click.echo(f"eps {entry['eps']:.4g}: worst case {entry['robust_accuracy']:.2%} ({per})")
    if result.naive:
        click.echo(f"naive evaluation (the defenses' true gradients): {result.naive['robust_accuracy']:.2%} robust, "
                   f"against {result.robust_accuracy:.2%} adaptive")
    if result.detection:
        d = result.detection
        rate = "-" if d["detection_rate"] is None else f"{d['detection_rate']:.2%}"
        click.echo(f"detector {d['name']}: flags {d['false_positive_rate']:.2%} of {d['clean_n']} clean inputs "
                   f"(target {d['target_fpr']:.0%}) and {rate} of {d['adversarial_n']} adversarial examples")
