"""``robust evaluate``: the cascade, the checks, defenses, sweeps, resumable and under torchrun."""

from __future__ import annotations

import sys
from typing import Any

import click

from robust.cli import STATE_FILE, _prepare, _write, main, parse_attack, run_options, user_errors


@main.command()
@run_options(["pgd"])
@click.option("--framework", type=click.Choice(["robust", "art", "foolbox"]), default="robust", show_default=True,
              help="Whose implementation of the attacks to run; every output is verified by robust.")
@click.option("--checks/--no-checks", default=True, show_default=True,
              help="Sanity checks that flag an unreliable evaluation (cheap extra attacks on a subset).")
@click.option("--strict", is_flag=True, help="Exit with code 3 when any check fails.")
@click.option("--defense", "defense_specs", multiple=True,
              help="Preprocessing defense NAME[:k=v,...], e.g. jpeg:quality=50; repeatable, applied in order. "
                   "gradient=bpda|approx|exact|eot sets the gradients attacks see [default: the defense's adaptive mode].")
@click.option("--naive", is_flag=True, help="Also attack the defenses through their true gradients, to show what a "
              "naive evaluation would report.")
@click.option("--eps-sweep", "eps_sweep", type=int,
              help="Also evaluate at N-1 evenly spaced smaller budgets (eps*k/N), for the robust-accuracy curve.")
@click.option("--detector", "detector_spec", help="Measure a detector, e.g. feature-squeezing:bit_depth=1 "
              "(calibrated on clean images of the dataset's train split).")
@click.option("--resume", is_flag=True, help=f"Continue a killed run in --out from its {STATE_FILE}, written after "
              "every batch; the result equals an uninterrupted run's.")
def evaluate(model_name: str, weights: str | None, attack_specs: tuple[str, ...], dataset: str, n: int,
             eps_text: tuple[str, ...], norm: str, batch_text: str, precision: str, compile_model: bool, device: str,
             seed: int, out: str | None, force: bool, progress: bool | None, framework: str, checks: bool,
             strict: bool, defense_specs: tuple[str, ...], naive: bool, eps_sweep: int | None,
             detector_spec: str | None, resume: bool) -> None:
    """Evaluate a model's robustness: clean pass, then the attacks as a cascade.

    Under ``torchrun --nproc-per-node N -m robust evaluate ...`` the batches are shared among
    the processes and rank 0 writes the one result.
    """
    from robust import distributed

    with user_errors():
        rank, device = distributed.setup(device)
        run = _prepare(model_name, eps_text, norm, batch_text, out, force, progress and rank == 0, eps_sweep, resume)
        result = _evaluate(run, model_name, weights, attack_specs, dataset, n, norm, precision, compile_model, device,
                           seed, framework, checks, defense_specs, naive, detector_spec, resume)
        if rank == 0:
            _report(result, run)
        distributed.teardown()
    if rank == 0 and strict and any(flag["status"] == "fail" for flag in result.checks):
        click.echo("a check failed: exiting with code 3 (--strict)", err=True)
        sys.exit(3)


def _evaluate(run: Any, model_name: str, weights: str | None, attack_specs: tuple[str, ...], dataset: str, n: int,
              norm: str, precision: str, compile_model: bool, device: str, seed: int, framework: str, checks: bool,
              defense_specs: tuple[str, ...], naive: bool, detector_spec: str | None, resume: bool) -> Any:
    from robust.cli_defense import apply_defenses, calibrated_detector
    from robust.compare import external_attack
    from robust.data import load_dataset
    from robust.evaluation import evaluate as run_evaluation
    from robust.loaders import load_model

    attacks = [external_attack(framework, name, **params) for name, params in map(parse_attack, attack_specs)]
    data = load_dataset(dataset, n=n)
    model = load_model(model_name, weights=weights, device=device).accelerate(precision, compile_model)
    model = apply_defenses(model, defense_specs, naive)
    detector = calibrated_detector(detector_spec, model, dataset)
    result = run_evaluation(model, data, attacks, eps=run.levels, norm=norm, batch_size=run.batch_size, seed=seed,
                            progress=run.progress, command=run.command, checks=checks, naive=naive, detector=detector,
                            checkpoint=run.out_dir / STATE_FILE, resume=resume)
    result.environment.update(precision=precision, compiled=compile_model)
    return result


def _report(result: Any, run: Any) -> None:
    from robust.cli_defense import echo_defenses

    click.echo(result.table())
    echo_defenses(result)
    for flag in result.checks:
        if flag["status"] != "pass":
            click.echo(f"{flag['status']}: {flag['id']}: {flag['message']} (see {flag['link']})")
    _write(result, run.out_dir)
    (run.out_dir / STATE_FILE).unlink(missing_ok=True)
