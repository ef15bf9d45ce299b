"""What every run shares: budgets, batch sizes, output folders, attacks, defenses, detectors, files."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robust.errors import RobustError
from robust.params import NORMS, parse_number

DEFAULT_EPS = {"linf": 0.3, "l2": 2.0, "l1": 10.0, "l0": 12.0}  # MNIST-sized budgets; l0 counts input components


def default_attacks(norm: str, gradient_default: str) -> tuple[str, ...]:
    """The attacks run when none is named: ``gradient_default`` in Linf and L2, FMN (the one attack
    that minimizes L1 and L0) otherwise."""
    return (gradient_default,) if norm in NORMS else ("fmn",)
STATE_FILE = ".state.pt"


@dataclass(frozen=True)
class RunOptions:
    """What ``robust evaluate`` and ``robust compare`` share (see ``robust evaluate --help``)."""

    model: str = "resnet"
    weights: str | None = None
    bounds: str | None = None  # "LO,HI"; None: the loader's
    mean: str | None = None  # "M1,M2,M3", with std; None: the loader's
    std: str | None = None
    normalization: str | None = None  # a preset name (imagenet, cifar10, cifar100, none) instead of mean/std
    attacks: tuple[str, ...] = ()  # none given: evaluate runs the standard preset, compare runs pgd (l1/l0: fmn)
    dataset: str = "mnist"
    n: int = 1000
    resize: int | None = None  # image files: None takes the model's own preprocessing
    crop: int | None = None
    chunk_size: int | None = None
    workers: int | None = None
    eps: tuple[str, ...] = ()
    norm: str = "linf"
    batch_size: str = "256"
    precision: str = "fp32"
    compile: bool = False
    device: str = "auto"
    seed: int = 0
    out: str | None = None
    force: bool = False
    progress: bool = False
    command: str = ""


@dataclass
class Finished:
    """A finished run: its result, where it was written, and this process's rank (0 writes)."""

    result: Any
    out_dir: Path
    rank: int = 0
    written: list[Path] = field(default_factory=list)


def budgets(options: RunOptions, sweep: int | None = None) -> list[float]:
    """The eps values to evaluate, sorted; the largest is the headline."""
    levels = sorted({parse_number(text, "--eps") for text in options.eps}) or [DEFAULT_EPS[options.norm]]
    if sweep is not None:
        if sweep < 2:
            raise RobustError(f"--eps-sweep needs at least 2 points, got {sweep}")
        levels = sorted({*levels, *(levels[-1] * k / sweep for k in range(1, sweep))})
    return levels


def batch_size(text: str) -> int | str:
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


def out_dir(options: RunOptions, resume: bool = False) -> Path:
    """The output folder: ``--out``, else ``reports/<time>-<model>``; an existing result needs ``force``."""
    if resume:
        if options.out is None:
            raise RobustError("--resume continues the run in --out DIR: give that folder")
        if not (Path(options.out) / STATE_FILE).exists():
            done = (Path(options.out) / "result.json").exists()
            raise RobustError(f"nothing to resume in {options.out}: " + ("the run finished (its result.json is there)"
                              if done else f"no {STATE_FILE} (a run writes it after every batch)"))
        return Path(options.out)
    if options.out is None:
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(options.model).name)[:40]
        return Path("reports") / f"{time.strftime('%Y%m%d-%H%M%S')}-{slug}"
    path = Path(options.out)
    if (path / "result.json").exists() and not options.force:
        raise RobustError(f"{path} already holds a result; choose another --out or pass --force")
    return path


def attacks_for(specs: tuple[str, ...], framework: str = "robust") -> list[Any]:
    """Attack objects from specs (``pgd:steps=10``), in ``framework``'s implementation; checked now."""
    from robust.comparison import external_attack

    attacks = [external_attack(framework, spec) for spec in specs]
    for attack in attacks:
        attack.check_hyperparameters()
    return attacks


def defended(model: Any, specs: tuple[str, ...], naive: bool = False) -> Any:
    """``model`` behind each preprocessing defense of ``specs`` (``jpeg:quality=50``), in order."""
    from robust.registry import create_defense

    if naive and not specs:
        raise RobustError("--naive compares against a defense's true gradients: add --defense")
    for spec in specs:
        defense = create_defense(spec)
        if defense.kind != "preprocessing":
            raise RobustError(f"defense {defense.name!r} produces a model: train it with `robust train --defense "
                              f"{defense.name}` and evaluate the trained weights")
        model = defense.wrap(model)
    return model


def calibrated_detector(spec: str | None, model: Any, dataset: str, n: int = 1000) -> Any:
    """The detector of ``spec`` around ``model``, calibrated on ``n`` clean train-split images."""
    if spec is None:
        return None
    from robust.data import has_splits, in_memory, load_dataset
    from robust.registry import create_defense

    defense = create_defense(spec)
    if not hasattr(defense, "detector"):
        raise RobustError(f"defense {defense.name!r} has no detector mode")
    if not has_splits(dataset):
        raise RobustError(f"--detector calibrates on held-out clean images from a train split, and {dataset!r} "
                          "has none; use a dataset with splits (mnist, digits, mnist:ROOT, cifar10:ROOT) or "
                          "calibrate from Python with detector.calibrate(x_clean)")
    detector = defense.detector(model)
    clean = in_memory(load_dataset(dataset, split="train", n=n))
    detector.calibrate(clean.x)
    detector.calibration = f"the first {len(clean)} images of the {clean.name} train split"
    return detector


def load(options: RunOptions, device: str) -> tuple[Any, Any]:
    """The model of ``options`` (accelerated as asked), loaded first, then its dataset: image files
    resized and cropped as ``--resize``/``--crop`` say, else as the model's loader knows it needs."""
    from robust.data.catalog import is_image_files, load_dataset

    model = load_model_of(options, device)
    resize, crop = options.resize, options.crop
    if resize is None and crop is None and model.preprocessing is not None and is_image_files(options.dataset):
        resize, crop = model.preprocessing.resize, model.preprocessing.crop
    data = load_dataset(options.dataset, n=options.n, resize=resize, crop=crop)
    return model.accelerate(options.precision, options.compile), data


def load_model_of(options: RunOptions, device: str) -> Any:
    """``--model`` with ``--weights``, ``--bounds``, ``--mean``/``--std`` or ``--normalization``."""
    from robust.runs.model_inputs import model_inputs
    from robust.zoo.loaders import load_model

    given = model_inputs(options.bounds, options.mean, options.std, options.normalization)
    return load_model(options.model, weights=options.weights, device=device, **given)


def write(result: Any, target: Path) -> list[Path]:
    """``result.json`` and ``report.html`` in ``target``."""
    from robust.report import write_html

    return [result.to_json(target / "result.json"), write_html(result, target / "report.html")]


def summary(result: Any) -> list[str]:
    """Lines that say what the table does not: defenses, sweeps, the naive run, a detector, checks."""
    lines = [f"defense {d['name']} ({', '.join(f'{k}={v}' for k, v in d['params'].items())}): "
             f"attacked with {d['gradient']} gradients" for d in result.defenses]
    for entry in result.sweep or []:
        per = ", ".join(f"{a['name']} {a['robust_accuracy']:.2%}" for a in entry["attacks"])
        lines.append(f"eps {entry['eps']:.4g}: worst case {entry['robust_accuracy']:.2%} ({per})")
    if result.naive:
        lines.append(f"naive evaluation (the defenses' true gradients): {result.naive['robust_accuracy']:.2%} robust, "
                     f"against {result.robust_accuracy:.2%} adaptive")
    if result.detection:
        d = result.detection
        rate = "-" if d["detection_rate"] is None else f"{d['detection_rate']:.2%}"
        lines.append(f"detector {d['name']}: flags {d['false_positive_rate']:.2%} of {d['clean_n']} clean inputs "
                     f"(target {d['target_fpr']:.0%}) and {rate} of {d['adversarial_n']} adversarial examples")
    lines += [f"{c['status']}: {c['id']}: {c['message']} (see {c['link']})" for c in result.checks if c["status"] != "pass"]
    return lines



def listing(what: str) -> dict[str, tuple[str, list[str]]]:
    """``robust list``: per name, a one-line description and detail lines (a plugin's parameters)."""
    if what in ("attacks", "defenses"):
        from robust.params import listing as parameter_lines
        from robust.registry import ATTACKS, DEFENSES, declarations

        registry = ATTACKS if what == "attacks" else DEFENSES
        found = {name: (_first_line(registry.get(name).__doc__), parameter_lines(declarations(registry.get(name))))
                 for name in registry.names()}
        return found | {name: (reason, []) for name, reason in registry.broken().items()}
    if what == "models":
        from robust.zoo.loaders import list_models

        return {name: (text, []) for name, text in list_models().items()}
    from robust.data import list_datasets

    return {name: (text, []) for name, text in list_datasets().items()}


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0] if doc and doc.strip() else ""
