"""What every command shares: one-line errors with exit code 2, and the options of evaluate and compare.

torch is imported only inside the commands, so ``robust --help`` answers at once. Bad input
ends in one line, ``Error: ...``, and exit code 2; never a traceback. The commands hold no
logic: they turn their options into one options object of :mod:`robust.runs` and print
what comes back.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

import click

from robust.errors import RobustError


class UserError(click.ClickException):
    """A one-line error with exit code 2."""

    exit_code = 2


class Command(click.Command):
    """A command whose usage errors print one line (click prints usage and hints by default)."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            raise UserError(exc.format_message()) from exc


class Group(click.Group):
    command_class = Command

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            raise UserError(exc.format_message()) from exc


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn :class:`RobustError` (and missing files) into one-line CLI errors."""
    try:
        yield
    except RobustError as exc:
        raise UserError(str(exc)) from exc
    except FileNotFoundError as exc:
        raise UserError(f"file not found: {exc.filename}") from exc
    except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
        raise
    except Exception as exc:  # an unexpected failure still ends in one line, unless debugging
        if os.environ.get("ROBUST_DEBUG"):
            raise
        message = str(exc).splitlines()[0] if str(exc) else ""
        error = click.ClickException(f"{type(exc).__name__}: {message} (set ROBUST_DEBUG=1 for the traceback)")
        raise error from exc


def command_line() -> str:
    """The command line as typed, for the result."""
    return " ".join(["robust", *sys.argv[1:]])


def show_progress(progress: bool | None) -> bool:
    """``--progress/--no-progress``, defaulting to whether stderr is a terminal."""
    return sys.stderr.isatty() if progress is None else progress


def run_options(func: Callable[..., None]) -> Callable[..., None]:
    """The options that ``evaluate`` and ``compare`` share (the fields of ``robust.runs.common.RunOptions``)."""
    options = [
        click.option("--model", default="resnet", show_default=True,
                     help="Zoo name, package.module:attr, TorchScript file, or torchvision architecture (with --weights)."),
        click.option("--weights", type=click.Path(dir_okay=False), help="State-dict file for the model."),
        click.option("--attack", "attacks", multiple=True,
                     help="Attack as NAME[:k=v,...]; repeatable. `robust list attacks` shows each one's parameters "
                     "[default: standard (AutoAttack's cascade) in evaluate, pgd in compare]."),
        click.option("--dataset", default="mnist", show_default=True,
                     help="mnist, digits, mnist:ROOT, cifar10:ROOT, .npz/.pt file or image folder."),
        click.option("--n", "--samples", "n", type=int, default=1000, show_default=True,
                     help="Number of test samples (spell it --samples under torchrun, whose own options claim --n)."),
        click.option("--eps", multiple=True,
                     help="Budget in input space, e.g. 0.3 or 8/255 [default: 0.3 linf, 2.0 l2]; repeatable in evaluate."),
        click.option("--norm", type=click.Choice(["linf", "l2"]), default="linf", show_default=True),
        click.option("--batch-size", default="256", show_default=True,
                     help="Samples per attack call, or auto: as many as fit on a GPU (halved on out-of-memory), 256 on a CPU."),
        click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True,
                     help="bf16: autocast for the attack steps (channels-last on CUDA); success is always judged in fp32."),
        click.option("--compile", is_flag=True, help="Run the model through torch.compile."),
        click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda."),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--out", type=click.Path(file_okay=False), help="Output folder [default: reports/<time>-<model>]."),
        click.option("--force", is_flag=True, help="Overwrite an existing result in --out."),
        click.option("--progress/--no-progress", default=None, help="Progress bars [default: when stderr is a terminal]."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def echo_written(paths: list[Any]) -> None:
    if paths:
        click.echo(f"\nwrote {' and '.join(str(p) for p in paths)}")
