"""The evaluation result, frozen. Its JSON (schema 1) is the source of truth; the report reads it.

An :class:`Evaluation` is built once, by whoever ran the evaluation, from everything it
records (the dataset's name, the environment, a comparison, ...); nobody changes it
afterwards (``dataclasses.replace`` makes a changed copy). This module imports no torch,
so results can be read anywhere; :func:`robust.report.write_html` renders one.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, TypedDict

SCHEMA = 1
Norm = Literal["linf", "l2", "l1", "l0"]
CheckStatus = Literal["pass", "warn", "fail"]


class Check(TypedDict):
    """One sanity check's verdict (``docs/checks.md`` explains each ``id``)."""

    id: str
    status: CheckStatus
    message: str
    link: str


@dataclass(frozen=True)
class AttackSummary:
    """One attack's outcome inside an evaluation.

    ``robust_accuracy`` is the accuracy left after this attack: in a cascade, after it and
    every attack before it; without a cascade, after it alone. ``success_rate`` is the share
    of the points it attacked that it broke within eps. Medians are over those successes.
    ``forward_passes``/``backward_passes`` count batched calls; ``forward_samples``/
    ``backward_samples`` the samples in them, and ``forwards_per_sample``/
    ``backwards_per_sample`` those over ``attacked``: the per-sample cost other tools report.
    Sizes are measured in every norm (L0: the number of changed input components).
    """

    name: str
    framework: str
    params: dict[str, Any]
    robust_accuracy: float
    success_rate: float
    median_l2: float | None
    median_linf: float | None
    seconds: float
    forward_passes: int
    backward_passes: int
    attacked: int = 0
    broken: int = 0
    violations: int = 0
    mean_l2: float | None = None
    mean_linf: float | None = None
    peak_memory_mb: float | None = None
    forward_samples: int = 0
    backward_samples: int = 0
    forwards_per_sample: float = 0.0
    backwards_per_sample: float = 0.0
    median_l1: float | None = None
    median_l0: float | None = None
    mean_l1: float | None = None
    mean_l0: float | None = None

    def median(self, norm: str) -> float | None:
        """The median size of the successes in ``norm``."""
        return getattr(self, f"median_{norm}")  # type: ignore[no-any-return]

    def mean(self, norm: str) -> float | None:
        """The mean size of the successes in ``norm``."""
        return getattr(self, f"mean_{norm}")  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Evaluation:
    """Clean and robust accuracy of one model on one dataset under a list of attacks."""

    model: str
    dataset: str
    n: int
    eps: float
    norm: Norm
    seed: int
    clean_accuracy: float
    robust_accuracy: float
    attacks: list[AttackSummary]
    samples: list[dict[str, Any]]
    checks: list[Check] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    cascade: bool = True
    comparison: dict[str, Any] | None = None
    examples: list[dict[str, Any]] = field(default_factory=list)
    defenses: list[dict[str, Any]] = field(default_factory=list)
    naive: dict[str, Any] | None = None
    detection: dict[str, Any] | None = None
    sweep: list[dict[str, Any]] | None = None
    classes: list[str] = field(default_factory=list)  # the dataset's class names, by label, when known
    schema: int = SCHEMA

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, path: str | os.PathLike[str]) -> Path:
        """Write the result as JSON, atomically (temporary file, then rename)."""
        return write_atomic(Path(path), json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evaluation:
        if data.get("schema") != SCHEMA:
            raise ValueError(f"unsupported result schema {data.get('schema')!r}; this version reads schema {SCHEMA}")
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["attacks"] = [AttackSummary(**a) for a in data["attacks"]]
        return cls(**fields)

    def table(self) -> str:
        """A plain-text table of the result, for terminals."""
        rows = [("clean", "", f"{self.clean_accuracy:.2%}", "", "", "")]
        rows += [(a.name, a.framework, f"{a.robust_accuracy:.2%}", f"{a.success_rate:.2%}" if a.attacked else "-",
                  _fmt(a.median(self.norm)), f"{a.seconds:.2f}") for a in self.attacks]
        rows.append(("worst case", "", f"{self.robust_accuracy:.2%}", "", "", f"{sum(a.seconds for a in self.attacks):.2f}"))
        head = ("attack", "framework", "accuracy", "success", f"median {self.norm}", "seconds")
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head, *rows]]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def load_result(path: str | os.PathLike[str]) -> Evaluation:
    """Read a ``result.json`` written by :meth:`Evaluation.to_json`."""
    with open(path, encoding="utf-8") as f:
        return Evaluation.from_dict(json.load(f))


def write_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes files private; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
