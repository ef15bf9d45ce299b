"""The ``robust`` command group: every command, from its own module."""

from __future__ import annotations

import click

from robust import __version__
from robust.cli.common import Group
from robust.cli.compare import compare
from robust.cli.evaluate import evaluate
from robust.cli.listing import list_command
from robust.cli.report import report
from robust.cli.train import train


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="robust")
def main() -> None:
    """Adversarial-robustness evaluation for PyTorch classifiers."""


for _command in (evaluate, compare, train, list_command, report):
    main.add_command(_command)
