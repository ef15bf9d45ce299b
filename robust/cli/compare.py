"""``robust compare``: each attack through robust, ART, Foolbox and AutoAttack on the same points, verified by robust."""

from __future__ import annotations

import warnings
from typing import Any

import click

from robust.cli.common import Command, command_line, echo_written, run_options, show_progress, user_errors
from robust.runs.evaluation import CompareOptions, run_compare


@click.command(cls=Command)
@run_options
@click.option("--frameworks", default="robust,art,foolbox,autoattack", show_default=True,
              help="Comma-separated frameworks to compare, of robust, art, foolbox, autoattack (pyautoattack), "
                   "torchattacks, adv-lib and cleverhans, or 'all' for every one installed (a missing one is left "
                   "out with a note); each skips the attacks it does not offer.")
@click.option("--budget", type=click.IntRange(min=1), default=None,
              help="Forward plus backward passes per point: every framework is judged on the best point each sample "
                   "reached within them (counted by the model, the same for all).")
def compare(progress: bool | None, **options: Any) -> None:
    """Run each attack through robust, ART, Foolbox and AutoAttack on the same points; verify and compare."""
    with user_errors():
        run = CompareOptions(**options, progress=show_progress(progress), command=command_line())
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            finished = run_compare(run)
        for warning in caught:
            click.echo(f"note: {warning.message}", err=True)
        from robust.comparison import comparison_table

        result = finished.result
        click.echo(f"clean accuracy {result.clean_accuracy:.2%} on {result.n} samples; {result.norm} eps {result.eps:g}\n")
        click.echo(comparison_table(result.to_dict()))
        echo_written(finished.written)
