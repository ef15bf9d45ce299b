"""``robust report``: re-render the HTML report of a ``result.json`` (needs no torch)."""

from __future__ import annotations

from pathlib import Path

import click

from robust.cli.common import Command, UserError


@click.command(cls=Command)
@click.argument("result_path", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="HTML file [default: beside the JSON].")
def report(result_path: str, output: str | None) -> None:
    """Re-render the HTML report of a result.json (needs no torch)."""
    from robust.report import write_html
    from robust.result import load_result

    try:
        result = load_result(result_path)
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{result_path} is not a robust result: {exc}") from exc
    target = Path(output) if output else Path(result_path).with_name("report.html")
    click.echo(f"wrote {write_html(result, target)}")
