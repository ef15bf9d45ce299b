"""Attack base class: the one place that validates, projects, clips, judges and counts.

A plugin subclasses :class:`Attack`, declares its hyperparameters in ``parameters`` (typed
:class:`~robust.params.Param` declarations) and implements :meth:`Attack.run`, which only
computes steps. The final ``__call__`` (Foolbox 3's design) owns every invariant: inputs
within bounds, the output projected onto the eps ball and clipped to the bounds, success
judged by re-running the model, passes counted, inputs never mutated and the model's
train/eval modes restored. The tensor operations it uses live in :mod:`robust.ops` and are
re-exported here for plugins.
"""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass
from typing import Any, ClassVar, cast, final

import torch
from torch import nn

from robust.errors import RobustError
from robust.model import Classifier, as_classifier
from robust.ops import clip, confirm, flat_norms, is_adversarial, judge, largest, lp_norms, per_sample, project, sizes
from robust.params import ALL_NORMS, NORMS, Configurable, Norm

__all__ = ["Attack", "AttackResult", "clip", "confirm", "flat_norms", "is_adversarial", "judge", "lp_norms",
           "num_classes", "per_sample", "project"]


@dataclass
class AttackResult:
    """What an attack returns; every field is computed by the harness.

    Attributes:
        x_adv: adversarial inputs (N, ...), inside the bounds (and the eps ball when given).
        success: per-sample bool, judged by re-running the model on ``x_adv``.
        l2: per-sample L2 norm of ``x_adv - x`` (input space).
        linf: per-sample Linf norm of ``x_adv - x`` (input space).
        l1: per-sample L1 norm of ``x_adv - x`` (input space).
        l0: per-sample number of components that ``x_adv`` changes (a float).
        forward_passes: batched forward passes the attack made through the model.
        backward_passes: batched backward passes the attack made through the model.
        seconds: wall-clock time of the attack itself.
        forward_samples: samples the model's forward passes processed (one image in a batch
            of 256 counts once): divided by N, the forward passes per sample.
        backward_samples: the same for backward passes.
        queries: per-sample model queries, for attacks that count them (decision-based).
        violations: samples whose output broke the bounds, the eps ball or was not finite;
            only attacks run in verify mode (other frameworks' outputs) can have any.
    """

    x_adv: torch.Tensor
    success: torch.Tensor
    l2: torch.Tensor
    linf: torch.Tensor
    l1: torch.Tensor
    l0: torch.Tensor
    forward_passes: int
    backward_passes: int
    seconds: float
    queries: torch.Tensor | None = None
    violations: int = 0
    forward_samples: int = 0
    backward_samples: int = 0

    def distance(self, norm: str) -> torch.Tensor:
        """Per-sample perturbation size in ``norm`` ("linf", "l2", "l1" or "l0")."""
        if norm not in ALL_NORMS:
            raise RobustError(f"norm must be one of {', '.join(ALL_NORMS)}, got {norm!r}")
        return getattr(self, norm)  # type: ignore[no-any-return]


class Attack(Configurable, abc.ABC):
    """Base of every attack plugin.

    Subclasses set ``name``, declare ``parameters`` (a tuple of :class:`~robust.params.Param`)
    and implement :meth:`run`. Constructors store keyword hyperparameters only; they are
    validated when the attack runs (or by :meth:`check_hyperparameters`), so one configured
    attack serves many models. ``defaults`` and ``norms`` follow from the declarations.
    """

    role = "attack"
    norms: ClassVar[tuple[str, ...]] = NORMS
    needs_eps: ClassVar[bool] = True
    gradient_free: ClassVar[bool] = False  # decision- or score-based: sees only the model's outputs
    takes_eps: ClassVar[bool] = False  # a minimization attack that uses a given eps (FAB stops a point found within it)
    verify_only: ClassVar[bool] = False
    framework: str = "robust"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        norm = next((p for p in cls.parameters if p.name == "norm"), None)
        if norm is not None and norm.choices is not None and "norms" not in cls.__dict__:
            cls.norms = tuple(norm.choices)

    @property
    def params(self) -> dict[str, Any]:
        """The hyperparameters in force: defaults overridden by the given non-None values (unvalidated)."""
        return {**self.defaults, **{k: v for k, v in self._given.items() if v is not None}}

    @property
    def norm(self) -> str:
        return str(self.params.get("norm", self.norms[0]))

    @final
    def __call__(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        eps: float | None = None,
        targeted: bool = False,
        seed: int = 0,
    ) -> AttackResult:
        """Attack ``model`` on inputs ``x`` (N, C, H, W) with labels (or targets) ``y`` (N,).

        Args:
            model: a :class:`~robust.Classifier` (a plain module is wrapped with bounds (0, 1)).
            x: clean inputs inside the model's bounds; never modified.
            y: true labels, or target labels when ``targeted``.
            eps: perturbation budget in input space, in the attack's norm. Required by
                fixed-budget attacks; minimization attacks use it as an upper bound.
            targeted: make the model predict ``y`` instead of moving away from it.
            seed: seeds the attack's randomness; same seed, same result.
        """
        model = as_classifier(model)
        x, y = self._check_call(model, x, y, eps)
        counter = model.counter
        before = (counter.forward, counter.backward, counter.forward_rows, counter.backward_rows)
        generator = torch.Generator(device=model.device).manual_seed(int(seed))
        if eps is not None:  # a ball larger than the whole box changes nothing; keep eps finite in float32
            span = model.bounds[1] - model.bounds[0]
            eps = min(float(eps), largest(self.norm, span, x[0].numel()))
        with model.evaluating():
            start = _now(model.device)
            out = self.run(model, x.clone(), y.clone(), eps=eps, targeted=targeted, generator=generator)
            seconds = _now(model.device) - start
            passes = (counter.forward - before[0], counter.backward - before[1])
            rows = (counter.forward_rows - before[2], counter.backward_rows - before[3])
            x_adv, queries = out if isinstance(out, tuple) else (out, None)
            result = self._finish(model, x, y, x_adv, eps, targeted, passes, seconds)
            result.forward_samples, result.backward_samples = rows
            if queries is not None:
                result.queries = torch.as_tensor(queries, device=x.device).long().reshape(len(x))
            return result

    def _finish(
        self, model: Classifier, x: torch.Tensor, y: torch.Tensor, x_adv: torch.Tensor, eps: float | None,
        targeted: bool, passes: tuple[int, int], seconds: float,
    ) -> AttackResult:
        x_adv = x_adv.detach().to(device=x.device, dtype=x.dtype)
        if x_adv.shape != x.shape:
            raise RuntimeError(f"attack {self.name!r} returned shape {tuple(x_adv.shape)}, expected {tuple(x.shape)}")
        finite = torch.isfinite(x_adv).flatten(1).all(dim=1).view(-1, *([1] * (x.ndim - 1)))
        x_adv = torch.where(finite, x_adv, x)
        if self.verify_only:
            return self._verify(model, x, y, x_adv, finite.flatten(), eps, targeted, passes, seconds)
        if eps is not None:
            x_adv = project(x_adv, x, eps, self.norm)
        x_adv = clip(x_adv, model.bounds)
        success = judge(model, x_adv, y, targeted)
        size = sizes(x_adv - x)
        return AttackResult(x_adv, success, size["l2"], size["linf"], size["l1"], size["l0"], passes[0], passes[1],
                            seconds)

    def _verify(
        self, model: Classifier, x: torch.Tensor, y: torch.Tensor, x_adv: torch.Tensor, finite: torch.Tensor,
        eps: float | None, targeted: bool, passes: tuple[int, int], seconds: float,
    ) -> AttackResult:
        """Check an output that someone else produced, without repairing it: a sample outside the
        bounds or the eps ball (or not finite) counts as a violation and never as a success."""
        lo, hi = model.bounds
        size = sizes(x_adv - x)
        valid = finite & ((x_adv >= lo - 1e-6) & (x_adv <= hi + 1e-6)).flatten(1).all(dim=1)
        if eps is not None:
            valid &= size[cast(Norm, self.norm)] <= eps * (1 + 1e-5) + 1e-7
        success = judge(model, x_adv, y, targeted) & valid
        return AttackResult(x_adv, success, size["l2"], size["linf"], size["l1"], size["l0"], passes[0], passes[1],
                            seconds, violations=int((~valid).sum()))

    def _check_call(
        self, model: Classifier, x: torch.Tensor, y: torch.Tensor, eps: float | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        self.check_params(eps)
        if not torch.is_tensor(x) or not torch.is_tensor(y):
            raise RobustError("x and y must be torch tensors")
        x = x.detach().to(model.device, non_blocking=True)  # pinned chunks copy while the host goes on
        model.check_inputs(x)
        x = clip(x, model.bounds)  # inputs within the check's tolerance land exactly on the bounds
        y = y.detach().to(model.device)
        if y.dtype.is_floating_point or y.dtype == torch.bool or y.shape != (x.shape[0],):
            raise RobustError(f"labels must be integers of shape ({x.shape[0]},), got {y.dtype} {tuple(y.shape)}")
        classes = num_classes(model, x)
        if int(y.min()) < 0 or int(y.max()) >= classes:
            raise RobustError(f"labels must lie in [0, {classes - 1}] for this model, got [{int(y.min())}, {int(y.max())}]")
        return x, y.long()

    def check_params(self, eps: float | None) -> None:
        """Validate hyperparameters and eps; raise :class:`RobustError` naming the problem."""
        self.check_hyperparameters()
        if eps is None and self.needs_eps:
            raise RobustError(f"attack {self.name!r} needs eps")
        if eps is not None and (isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 <= eps < float("inf")):
            raise RobustError(f"eps must be a finite number >= 0, got {eps}")

    def check_hyperparameters(self) -> dict[str, Any]:
        """The validated hyperparameters in force (declarations first, then :meth:`validate`)."""
        values = self.checked_params()
        if self.norm not in self.norms:
            raise RobustError(f"norm must be one of {', '.join(self.norms)} for attack {self.name!r}, not {self.norm!r}")
        return values

    def components(self) -> list[Attack]:
        """What an evaluation runs for this attack: itself, or a preset's parts, each reported on its own."""
        return [self]

    @abc.abstractmethod
    def run(
        self, model: Classifier, x: torch.Tensor, y: torch.Tensor, *, eps: float | None, targeted: bool,
        generator: torch.Generator,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Compute adversarial inputs for the batch; the harness checks and finishes them.

        Args:
            model: the classifier, already in eval mode; call it as ``model(x)`` for logits.
            x: a private copy of the clean inputs, on ``model.device``.
            y: labels (or targets), long, on ``model.device``.
            eps: the budget, or None for minimization attacks run without one.
            targeted: whether ``y`` holds targets.
            generator: the only source of randomness to use (seeded by the caller).

        Returns:
            ``x_adv``, or ``(x_adv, queries)`` with per-sample model queries (N,) for
            attacks that budget them.
        """


def num_classes(model: Classifier, x: torch.Tensor) -> int:
    """Number of logits the model returns, probed once on one input."""
    if model.num_classes is None:
        with torch.no_grad(), model.evaluating():
            model.num_classes = int(model(x[:1]).shape[1])
    return int(model.num_classes)


def _now(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()

