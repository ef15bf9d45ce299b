"""``robust train``: standard or adversarial training with checkpoints and a final summary."""

from __future__ import annotations

from typing import Any

import click

from robust.cli.common import Command, show_progress, user_errors
from robust.runs.training import TrainOptions, epoch_line, run_train, summary_line


@click.command(cls=Command)
@click.option("--model", default="cnn", show_default=True,
              help="Architecture to train from scratch: a zoo name or package.module:attr.")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False),
              help="Start from these weights (a state dict) instead of a fresh initialization, to fine-tune.")
@click.option("--defense", help="A training defense, e.g. adversarial-training:method=pgd.")
@click.option("--eps", help="Training eps (Linf, input space); overrides the defense's eps.")
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
def train(progress: bool | None, **options: Any) -> None:
    """Train a model (adversarially with --defense); checkpoint every epoch, summarize at the end."""
    with user_errors():
        run = TrainOptions(**options, progress=show_progress(progress))
        trained = run_train(run, on_epoch=lambda entry: click.echo(epoch_line(entry)))
        if trained.summary:
            click.echo(summary_line(trained, run))
        click.echo(f"wrote {trained.weights} (checkpoint {trained.checkpoint}, summary {trained.card.name})")
