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
from robust.params import ALL_NORMS


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
                     help="Zoo name, timm:NAME[:k=v,...], hf:FOLDER, torchvision architecture (with --weights), "
                     "package.module:attr or TorchScript file; `robust list models` says what each takes. "
                     "Nothing is downloaded."),
        click.option("--weights", type=click.Path(dir_okay=False),
                     help="Local state-dict file for the model (for timm: also a training checkpoint)."),
        click.option("--bounds", metavar="LO,HI",
                     help="Smallest and largest valid input value, e.g. 0,255 [default: the loader's, mostly 0,1]."),
        click.option("--normalization", type=click.Choice(["imagenet", "cifar10", "cifar100", "none"]),
                     help="Per-channel mean/std preset applied inside the model [default: the loader's: ImageNet for "
                     "torchvision, the pretrained config for timm, the image processor for hf:, none otherwise]."),
        click.option("--mean", metavar="M1,M2,M3", help="Per-channel mean subtracted inside the model (with --std)."),
        click.option("--std", metavar="S1,S2,S3", help="Per-channel standard deviation divided by inside the model "
                     "(with --mean)."),
        click.option("--attack", "attacks", multiple=True,
                     help="Attack as NAME[:k=v,...]; repeatable. `robust list attacks` shows each one's parameters "
                     "[default: standard (AutoAttack's cascade) in evaluate, pgd in compare]."),
        click.option("--dataset", default="mnist", show_default=True,
                     help="mnist, digits, samples:cifar10|cifar100|imagenet|mnist|fashion-mnist (20 real test images "
                     "each), mnist:ROOT, cifar10:ROOT, cifar100:ROOT, .npz/.pt file, or a folder of class folders "
                     "(ImageNet WordNet-id folders get the standard class indices). `robust list datasets`."),
        click.option("--n", "--samples", "n", type=int, default=1000, show_default=True,
                     help="Number of test samples (spell it --samples under torchrun, whose own options claim --n)."),
        click.option("--resize", type=int, help="Image files: resize the short side to N pixels first "
                     "[default: the model's own preprocessing, e.g. 256 for ImageNet models; else none]."),
        click.option("--crop", type=int, help="Image files: then keep the center N x N pixels [default: the model's own, "
                     "e.g. 224; else none]."),
        click.option("--chunk-size", type=int, help="Points read and attacked together: memory grows with it, not with "
                     "--n [default: data in memory at once, image files in chunks of about 256 MiB]."),
        click.option("--workers", type=int, help="Processes that read and decode images ahead of the attacks "
                     "[default: up to 4]."),
        click.option("--eps", multiple=True,
                     help="Budget in input space, e.g. 0.3 or 8/255 [default: 0.3 linf, 2.0 l2, 10 l1, 12 l0 (changed "
                     "components)]; repeatable in evaluate."),
        click.option("--norm", type=click.Choice(list(ALL_NORMS)), default="linf", show_default=True,
                     help="The threat model. l1 and l0 are minimized by fmn, which runs when no --attack is given."),
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
