"""``robust evaluate``: the cascade, the checks, defenses, sweeps, detectors; resumable and under torchrun."""

from __future__ import annotations

import sys
from typing import Any

import click

from robust.cli.common import Command, command_line, echo_written, run_options, show_progress, user_errors
from robust.runs.common import STATE_FILE, summary
from robust.runs.evaluation import EvaluateOptions, run_evaluate


@click.command(cls=Command)
@run_options
@click.option("--framework", type=click.Choice(["robust", "art", "foolbox", "autoattack"]), default="robust", show_default=True,
              help="Whose implementation of the attacks to run; every output is verified by robust.")
@click.option("--checks/--no-checks", default=True, show_default=True,
              help="Sanity checks that flag an unreliable evaluation (cheap extra attacks on a subset).")
@click.option("--strict", is_flag=True, help="Exit with code 3 when any check fails.")
@click.option("--defense", "defenses", multiple=True,
              help="Preprocessing defense NAME[:k=v,...], e.g. jpeg:quality=50; repeatable, applied in order. "
                   "gradient=bpda|approx|exact|eot sets the gradients attacks see [default: the defense's adaptive mode].")
@click.option("--naive", is_flag=True, help="Also attack the defenses through their true gradients, to show what a "
              "naive evaluation would report.")
@click.option("--eps-sweep", type=int,
              help="Also evaluate at N-1 evenly spaced smaller budgets (eps*k/N), for the robust-accuracy curve.")
@click.option("--detector", help="Measure a detector, e.g. feature-squeezing:bit_depth=1 "
              "(calibrated on clean images of the dataset's train split).")
@click.option("--resume", is_flag=True, help=f"Continue a killed run in --out from its {STATE_FILE}, written after "
              "every batch; the result equals an uninterrupted run's.")
def evaluate(progress: bool | None, **options: Any) -> None:
    """Evaluate a model's robustness: clean pass, then the attacks as a cascade.

    Under ``torchrun --nproc-per-node N -m robust evaluate ...`` the batches are shared among
    the processes and rank 0 writes the one result.
    """
    with user_errors():
        run = EvaluateOptions(**options, progress=show_progress(progress), command=command_line())
        finished = run_evaluate(run)
        if finished.rank == 0:
            click.echo(finished.result.table())
            for line in summary(finished.result):
                click.echo(line)
            echo_written(finished.written)
    if finished.rank == 0 and run.strict and any(c["status"] == "fail" for c in finished.result.checks):
        click.echo("a check failed: exiting with code 3 (--strict)", err=True)
        sys.exit(3)
