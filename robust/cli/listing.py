"""``robust list``: installed attacks and defenses with their typed parameters, zoo models, datasets."""

from __future__ import annotations

import click

from robust.cli.common import Command, user_errors


@click.command("list", cls=Command)
@click.argument("what", type=click.Choice(["attacks", "defenses", "models", "datasets"]))
def list_command(what: str) -> None:
    """List installed attacks or defenses (with their parameters), zoo models, or built-in datasets."""
    from robust.runs.common import listing

    with user_errors():
        entries = listing(what)
        width = max((len(name) for name in entries), default=0) + 2
        for name, (text, details) in entries.items():
            click.echo(f"{name:<{width}}{text}".rstrip())
            for line in details:
                click.echo(f"{'':<{width}}  {line}")
        if not entries:
            click.echo(f"no {what} installed")
