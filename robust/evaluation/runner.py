"""Running one attack over its points in batches: checkpointed, resumable, shardable, OOM-tolerant.

The batches of an attack, and the seed of each, depend only on the points it attacks, so
the same evaluation gives the same per-sample results however it is run:

- resumed (``RunState`` with a file): every finished batch is written to the state file
  atomically (a temporary file, then a rename), so a run killed at any moment restarts
  from its last finished batch;
- sharded over ``torch.distributed`` ranks (``torchrun``): rank ``r`` of ``w`` runs the
  batches ``r, r + w, ...``, and the outcomes are gathered on every rank before the next
  attack of the cascade picks its points (data read in several chunks is split by chunk
  instead: ``split``, each rank runs every batch of its own chunks);
- on a CUDA out-of-memory error, the batch is split in halves and retried (and later
  batches keep the smaller size), losing nothing.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch

from robust.attack import Attack, AttackResult
from robust.errors import RobustError
from robust.model import Classifier
from robust.params import ALL_NORMS

log = logging.getLogger(__name__)
STATE_VERSION = 2  # 2: per-point sizes in every norm of ALL_NORMS (1 kept L2 and Linf only)
T = TypeVar("T")


@dataclass
class BatchOutcome:
    """What one batch of one attack produced, on the CPU: enough to rebuild the result."""

    points: torch.Tensor
    sizes: torch.Tensor  # (n, len(ALL_NORMS)): per point and norm, the size of its success (NaN where none)
    kept: dict[int, torch.Tensor] = field(default_factory=dict)
    seconds: float = 0.0
    forward: int = 0
    backward: int = 0
    violations: int = 0
    forward_rows: int = 0
    backward_rows: int = 0

    @classmethod
    def merge(cls, parts: list[BatchOutcome]) -> BatchOutcome:
        kept: dict[int, torch.Tensor] = {}
        for p in parts:
            kept.update(p.kept)
        return cls(torch.cat([p.points for p in parts]), torch.cat([p.sizes for p in parts]), kept,
                   sum(p.seconds for p in parts),
                   sum(p.forward for p in parts), sum(p.backward for p in parts), sum(p.violations for p in parts),
                   sum(p.forward_rows for p in parts), sum(p.backward_rows for p in parts))

    def as_state(self) -> dict[str, Any]:
        return {"points": self.points, "sizes": self.sizes, "kept": self.kept, "seconds": self.seconds,
                "forward": self.forward, "backward": self.backward, "violations": self.violations,
                "forward_rows": self.forward_rows, "backward_rows": self.backward_rows}


def _distributed() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class RunState:
    """Finished batches of an evaluation, kept in memory and, with ``path``, on disk.

    Args:
        path: state file, rewritten atomically after every batch (None: memory only).
        resume: read ``path`` first and skip the batches it holds.
        fingerprint: identifies the model and data; a state written for others is refused.
    """

    def __init__(self, path: Path | None = None, resume: bool = False, fingerprint: str = "") -> None:
        self.rank, self.world = _distributed()
        if path is not None and self.world > 1:
            path = path.with_name(f"{path.stem}.rank{self.rank}-of-{self.world}{path.suffix}")
        self.path = path
        self.fingerprint = fingerprint
        self.split = False  # the data is split by chunk among the processes: each runs every batch of its own
        self.done: dict[str, dict[int, dict[str, Any]]] = {}
        if resume:
            self._load()

    def _load(self) -> None:
        if self.path is None or not self.path.exists():
            raise RobustError(f"nothing to resume: {self.path} does not exist")
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise RobustError(f"{self.path} is not a readable evaluation state: {exc}") from exc
        if state.get("version") != STATE_VERSION:
            raise RobustError(f"{self.path} was written by another version of robust (state version "
                              f"{state.get('version')}, this one reads {STATE_VERSION}); start over without --resume")
        if state.get("fingerprint") != self.fingerprint:
            raise RobustError(f"{self.path} was written for another model, dataset or settings; "
                              "start over without --resume")
        self.done = state["done"]
        log.info("resuming with %d finished batches", sum(len(v) for v in self.done.values()))

    def get(self, key: str, batch: int) -> BatchOutcome | None:
        found = self.done.get(key, {}).get(batch)
        return BatchOutcome(**found) if found is not None else None

    def put(self, key: str, batch: int, outcome: BatchOutcome) -> None:
        self.done.setdefault(key, {})[batch] = outcome.as_state()
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.tmp")
            torch.save({"version": STATE_VERSION, "fingerprint": self.fingerprint, "done": self.done}, tmp)
            os.replace(tmp, self.path)

    def mine(self, n: int) -> range:
        """The batch indices this process runs."""
        return range(n) if self.split else range(self.rank, n, self.world)

    def gather(self, key: str, n: int) -> list[BatchOutcome]:
        """Every batch of ``key``, from every rank, in batch order."""
        local = {b: self.done[key][b] for b in self.mine(n)} if n else {}
        if self.world > 1 and not self.split:
            shards: list[Any] = [None] * self.world
            torch.distributed.all_gather_object(shards, local)
            local = {b: v for shard in shards for b, v in shard.items()}
        return [BatchOutcome(**local[b]) for b in range(n)]

    def finish(self) -> None:
        """Remove the state file once the result is safely written."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def fingerprint(model: Classifier, source: Any) -> str:
    """A short hash of the model's weights and the data (``source.identity()``), to match a state file to its run."""
    digest = hashlib.sha256(source.identity().encode())
    for tensor in model.module.state_dict().values():
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:32]


def run_key(attack: Attack, eps: float, seed: int, idx: torch.Tensor, model: Classifier) -> str:
    """Identifies one attack run of the cascade: attack, settings, defenses and the points it attacks."""
    defenses = ",".join(f"{d.name}{sorted(d.params.items())}{d.gradient}" for d in getattr(model, "defenses", []))
    points = hashlib.sha256(idx.cpu().numpy().tobytes()).hexdigest()[:16]
    return f"{attack.framework}:{attack.name}{sorted(attack.params.items())}|eps={eps!r}|seed={seed}|{defenses}|{points}"


def is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()


@dataclass
class Batches:
    """How an attack's points are cut: a fixed batch size, and a chunk size that shrinks on OOM."""

    size: int
    chunk: int = 0

    def cut(self, idx: torch.Tensor) -> list[torch.Tensor]:
        return [idx[i:i + self.size] for i in range(0, len(idx), self.size)]


def run_batch(model: Classifier, attack: Attack, x: torch.Tensor, y: torch.Tensor, part: torch.Tensor, *,
              eps: float, norm: str, seed: int, keep: int, plan: Batches) -> BatchOutcome:
    """One batch, split into smaller chunks (each seeded apart) while the device runs out of memory."""
    chunk = min(plan.chunk or len(part), len(part))
    while True:
        try:
            parts = [_attack_chunk(model, attack, x, y, part[i:i + chunk], eps, norm, seed + 7919 * k, keep)
                     for k, i in enumerate(range(0, len(part), chunk))]
            return BatchOutcome.merge(parts)
        except (RuntimeError, torch.cuda.OutOfMemoryError) as exc:
            if not is_oom(exc) or chunk == 1:
                raise
            chunk = max(1, chunk // 2)
            plan.chunk = chunk
            if model.device.type == "cuda":
                torch.cuda.empty_cache()
            log.warning("out of memory: retrying %s with batches of %d", attack.name, chunk)


def _attack_chunk(model: Classifier, attack: Attack, x: torch.Tensor, y: torch.Tensor, part: torch.Tensor,
                  eps: float, norm: str, seed: int, keep: int) -> BatchOutcome:
    res: AttackResult = attack(model, x[part], y[part], eps=eps if attack.needs_eps or attack.takes_eps else None, seed=seed)
    hit = res.success.cpu()
    found = torch.where(hit.unsqueeze(1), torch.stack([res.distance(n) for n in ALL_NORMS], dim=1).cpu(), float("nan"))
    inside = (hit & (res.distance(norm).cpu() <= eps * (1 + 1e-5) + 1e-7)).nonzero().flatten()
    kept = {int(part[pos]): res.x_adv[pos].detach().cpu().clone() for pos in inside[:keep].tolist()}
    return BatchOutcome(part.cpu().clone(), found, kept, res.seconds, res.forward_passes, res.backward_passes,
                        res.violations, res.forward_samples, res.backward_samples)


def progress_bar(items: Iterable[T], total: int, desc: str, show: bool, unit: str = "batch") -> Iterable[T]:
    from tqdm.auto import tqdm

    rank, _ = _distributed()
    return tqdm(items, total=total, desc=desc, unit=unit, disable=not show or rank != 0, leave=False)


@dataclass
class Distances:
    """Per-point perturbation sizes of successful adversarial examples, in every norm (NaN where none)."""

    sizes: torch.Tensor  # (n, len(ALL_NORMS)), columns in the order of ALL_NORMS
    kept: dict[int, torch.Tensor] = field(default_factory=dict)  # a few adversarial inputs, for the report

    @classmethod
    def empty(cls, n: int) -> Distances:
        return cls(torch.full((n, len(ALL_NORMS)), float("nan")))

    @classmethod
    def gather(cls, n: int, parts: list[BatchOutcome], keep: int) -> Distances:
        """The distances of ``n`` points from the batches that attacked some of them, and up to ``keep`` images."""
        found = cls.empty(n)
        for part in parts:
            found.sizes[part.points] = part.sizes
            for j, image in part.kept.items():
                if len(found.kept) < keep:
                    found.kept[j] = image
        return found

    def of(self, norm: str) -> torch.Tensor:
        """The sizes in ``norm`` (n,)."""
        return self.sizes[:, ALL_NORMS.index(norm)]  # type: ignore[arg-type]

    @property
    def hits(self) -> torch.Tensor:
        """Points with a success (n,) bool."""
        return ~torch.isnan(self.sizes[:, 0])

    def within(self, eps: float, norm: str) -> torch.Tensor:
        """Points with an adversarial example inside the eps ball (NaN compares False)."""
        return self.of(norm) <= eps * (1 + 1e-5) + 1e-7

    def keep_smaller(self, other: Distances) -> None:
        """Keep, per point and norm, the smaller of the two sizes (NaN: none found)."""
        self.sizes = torch.fmin(self.sizes, other.sizes)
