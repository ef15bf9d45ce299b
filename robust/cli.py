"""The ``robust`` command line: thin wrappers over the Python API.

torch is imported inside the commands, so ``robust --help`` answers at once. Bad input
ends in one line, ``Error: ...``, and exit code 2; never a traceback.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import click

from robust import __version__
from robust.errors import RobustError

DEFAULT_EPS = {"linf": 0.3, "l2": 2.0}
STATE_FILE = ".state.pt"


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


def parse_number(text: str, what: str) -> float:
    """A float from ``0.3``, ``8/255`` or ``1e-2``; :class:`RobustError` otherwise."""
    try:
        value = float(Fraction(text.strip())) if "/" in text else float(text)
    except (ValueError, ZeroDivisionError):
        raise RobustError(f"{what} must be a number such as 0.3 or 8/255, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise RobustError(f"{what} must be a finite number >= 0, got {text!r}")
    return value


def parse_value(text: str) -> Any:
    """An attack parameter value: bool, none, int, float, fraction, else the string."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for cast in (int, float):
        with contextlib.suppress(ValueError):
            return cast(text)
    if re.fullmatch(r"[0-9.]+/[0-9.]+", text):
        with contextlib.suppress(ValueError, ZeroDivisionError):
            return float(Fraction(text))
    return text


def parse_attack(spec: str) -> tuple[str, dict[str, Any]]:
    """``pgd:steps=10,restarts=2`` -> ("pgd", {"steps": 10, "restarts": 2})."""
    name, _, rest = spec.partition(":")
    params: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise RobustError(f"attack parameters must look like name:key=value,key=value, got {spec!r}")
        params[key.strip().replace("-", "_")] = parse_value(value.strip())
    return name.strip(), params


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="robust")
def main() -> None:
    """Adversarial-robustness evaluation for PyTorch classifiers."""


def run_options(default_attacks: list[str]) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """The options that ``evaluate`` and ``compare`` share."""
    options = [
        click.option("--model", "model_name", default="resnet", show_default=True,
                     help="Zoo name, package.module:attr, TorchScript file, or torchvision architecture (with --weights)."),
        click.option("--weights", type=click.Path(dir_okay=False), help="State-dict file for the model."),
        click.option("--attack", "attack_specs", multiple=True, default=default_attacks, show_default=True,
                     help="Attack as NAME[:k=v,...]; repeatable."),
        click.option("--dataset", default="mnist", show_default=True,
                     help="mnist, digits, mnist:ROOT, cifar10:ROOT, .npz/.pt file or image folder."),
        click.option("--n", "--samples", "n", type=int, default=1000, show_default=True,
                     help="Number of test samples (spell it --samples under torchrun, whose own options claim --n)."),
        click.option("--eps", "eps_text", multiple=True,
                     help="Budget in input space, e.g. 0.3 or 8/255 [default: 0.3 linf, 2.0 l2]; repeatable in evaluate."),
        click.option("--norm", type=click.Choice(["linf", "l2"]), default="linf", show_default=True),
        click.option("--batch-size", "batch_text", default="256", show_default=True,
                     help="Samples per attack call, or auto: as many as fit on a GPU (halved on out-of-memory), 256 on a CPU."),
        click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True,
                     help="bf16: autocast for the attack steps (channels-last on CUDA); success is always judged in fp32."),
        click.option("--compile", "compile_model", is_flag=True, help="Run the model through torch.compile."),
        click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda."),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--out", type=click.Path(file_okay=False), help="Output folder [default: reports/<time>-<model>]."),
        click.option("--force", is_flag=True, help="Overwrite an existing result in --out."),
        click.option("--progress/--no-progress", default=None, help="Progress bars [default: when stderr is a terminal]."),
    ]

    def decorate(func: Callable[..., None]) -> Callable[..., None]:
        for option in reversed(options):
            func = option(func)
        return func
    return decorate


@dataclass
class Run:
    """What every run command resolves from its options before doing any work."""

    eps: float
    out_dir: Path
    progress: bool
    command: str
    levels: list[float]
    batch_size: int | str


def parse_batch_size(text: str) -> int | str:
    """``auto`` or a positive integer."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        size = int(text)
    except ValueError:
        raise RobustError(f"--batch-size must be a positive integer or auto, got {text!r}") from None
    if size < 1:
        raise RobustError(f"--batch-size must be a positive integer, got {size}")
    return size


def _prepare(model_name: str, eps_text: tuple[str, ...], norm: str, batch_text: str, out: str | None, force: bool,
             progress: bool | None, sweep: int | None = None, resume: bool = False) -> Run:
    levels = sorted({parse_number(text, "--eps") for text in eps_text}) or [DEFAULT_EPS[norm]]
    if sweep is not None:
        if sweep < 2:
            raise RobustError(f"--eps-sweep needs at least 2 points, got {sweep}")
        levels = sorted({*levels, *(levels[-1] * k / sweep for k in range(1, sweep))})
    batch_size = parse_batch_size(batch_text)
    return Run(levels[-1], _out_dir(out, model_name, force, resume), sys.stderr.isatty() if progress is None else progress,
               " ".join(["robust", *sys.argv[1:]]), levels, batch_size)


def _write(result: Any, out_dir: Path) -> None:
    json_path = result.to_json(out_dir / "result.json")
    html_path = result.to_html(out_dir / "report.html")
    click.echo(f"\nwrote {json_path} and {html_path}")


@main.command()
@run_options(["pgd"])
@click.option("--frameworks", default="robust,art,foolbox", show_default=True,
              help="Comma-separated frameworks to compare.")
def compare(model_name: str, weights: str | None, attack_specs: tuple[str, ...], dataset: str, n: int,
            eps_text: tuple[str, ...], norm: str, batch_text: str, precision: str, compile_model: bool, device: str,
            seed: int, out: str | None, force: bool, progress: bool | None, frameworks: str) -> None:
    """Run each attack through robust, ART and Foolbox on the same points; verify and compare."""
    with user_errors():
        if len(eps_text) > 1:
            raise RobustError("compare takes one --eps; use evaluate for several")
        run = _prepare(model_name, eps_text, norm, batch_text, out, force, progress)
        if run.batch_size == "auto":
            raise RobustError("compare takes a fixed --batch-size (the frameworks run on the same batches)")
        from robust.compare import compare as run_compare
        from robust.compare import comparison_table
        from robust.data import load_dataset
        from robust.loaders import load_model
        from robust.registry import create_attack

        attacks = [create_attack(name, **params) for name, params in map(parse_attack, attack_specs)]
        names = [f.strip() for f in frameworks.split(",") if f.strip()]
        data = load_dataset(dataset, n=n)
        model = load_model(model_name, weights=weights, device=device).accelerate(precision, compile_model)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            result = run_compare(model, (data.x, data.y), attacks, frameworks=names, eps=run.eps, norm=norm,
                                 batch_size=int(run.batch_size), seed=seed, progress=run.progress, command=run.command)
        for warning in caught:
            click.echo(f"note: {warning.message}", err=True)
        result.dataset = data.name
        click.echo(f"clean accuracy {result.clean_accuracy:.2%} on {result.n} samples; {norm} eps {run.eps:g}\n")
        click.echo(comparison_table(result.to_dict()))
        _write(result, run.out_dir)


def _out_dir(out: str | None, model_name: str, force: bool, resume: bool = False) -> Path:
    if resume:
        if out is None:
            raise RobustError("--resume continues the run in --out DIR: give that folder")
        if not (Path(out) / STATE_FILE).exists():
            done = (Path(out) / "result.json").exists()
            raise RobustError(f"nothing to resume in {out}: " + ("the run finished (its result.json is there)" if done
                              else f"no {STATE_FILE} (a run writes it after every batch)"))
        return Path(out)
    if out is None:
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(model_name).name)[:40]
        return Path("reports") / f"{time.strftime('%Y%m%d-%H%M%S')}-{slug}"
    path = Path(out)
    if (path / "result.json").exists() and not force:
        raise RobustError(f"{path} already holds a result; choose another --out or pass --force")
    return path


@main.command("list")
@click.argument("what", type=click.Choice(["attacks", "defenses", "models", "datasets"]))
def list_command(what: str) -> None:
    """List installed attacks or defenses, zoo models, or built-in datasets."""
    with user_errors():
        listing = _listing(what)
        width = max((len(name) for name in listing), default=0) + 2
        for name, text in listing.items():
            click.echo(f"{name:<{width}}{text}" if text else name)
        if not listing:
            click.echo(f"no {what} installed")


def _listing(what: str) -> dict[str, str]:
    if what in ("attacks", "defenses"):
        from robust.registry import ATTACKS, DEFENSES

        registry = ATTACKS if what == "attacks" else DEFENSES
        return {name: _first_line(registry.get(name).__doc__) for name in registry.names()}
    if what == "models":
        from robust.loaders import list_models

        return list_models()
    from robust.data import list_datasets

    return list_datasets()


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0] if doc and doc.strip() else ""


@main.command()
@click.argument("result_path", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="HTML file [default: beside the JSON].")
def report(result_path: str, output: str | None) -> None:
    """Re-render the HTML report of a result.json (needs no torch)."""
    from robust.result import load_result

    try:
        result = load_result(result_path)
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{result_path} is not a robust result: {exc}") from exc
    target = Path(output) if output else Path(result_path).with_name("report.html")
    click.echo(f"wrote {result.to_html(target)}")


from robust import cli_defense, cli_evaluate  # noqa: E402,F401  (register `train` and `evaluate` on the group)
