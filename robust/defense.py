"""Defense bases: preprocessing defenses wrap a Classifier, training defenses produce a model.

A preprocessing defense declares how gradients pass through it, because a defense that
only breaks gradients gives a false sense of security (Athalye, Carlini and Wagner 2018,
"Obfuscated Gradients Give a False Sense of Security", arXiv:1802.00420):

- ``exact``: autograd through the preprocessing as implemented (the naive evaluation);
- ``bpda``: the true preprocessing forward, the identity backward (Backward Pass
  Differentiable Approximation);
- ``approx``: the true preprocessing forward, the gradient of a differentiable
  approximation backward (for JPEG, kornia's differentiable JPEG);
- ``eot``: for randomized defenses, gradients averaged over ``eot_samples`` draws
  (Expectation over Transformation), combined with ``bpda`` for the non-differentiable part.

Example:
    >>> defended = robust.create_defense("jpeg", quality=50).wrap(model)
    >>> robust.evaluate(defended, "mnist", "pgd", eps=0.3)
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar, Literal, cast

import torch
from torch import nn

from robust.errors import RobustError
from robust.model import Classifier, Wrapper
from robust.params import Configurable, Param

GradientMode = Literal["exact", "bpda", "approx", "eot"]
GRADIENT_MODES: tuple[GradientMode, ...] = ("exact", "bpda", "approx", "eot")


class Defense(Configurable, abc.ABC):
    """Base of every defense plugin. Constructors only store keyword hyperparameters.

    Class attributes:
        name: registry name.
        kind: "preprocessing" (wraps a Classifier) or "training" (produces a model); set by the base.
        parameters: typed declarations of the hyperparameters (:class:`~robust.params.Param`).
    """

    role = "defense"
    kind: ClassVar[str] = ""

    @property
    def params(self) -> dict[str, Any]:
        """The hyperparameters in force (defaults updated with the given ones), validated."""
        return self.checked_params()

    def describe(self) -> dict[str, Any]:
        """Name, kind and hyperparameters, for the result file."""
        return {"name": self.name, "kind": self.kind, "params": self.params}

    def wrap(self, model: Classifier) -> Classifier:
        """Only preprocessing defenses wrap a model."""
        raise RobustError(f"defense {self.name!r} produces a model rather than wrapping one; "
                          "use `robust train` (or robust.training.train)")


class TrainingDefense(Defense):
    """A defense that changes how a model is trained (adversarial training); ``robust train`` runs it."""

    kind = "training"

    @abc.abstractmethod
    def eps_at(self, epoch: float) -> float:
        """The training budget at a (fractional) epoch."""

    @abc.abstractmethod
    def perturb(self, model: Classifier, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
        """The inputs to train on for this batch (the model is in training mode)."""


class PreprocessingDefense(Defense):
    """A transform in front of the model; attacks always target the whole pipeline.

    Class attributes:
        differentiable: whether autograd through the transform gives useful gradients.
        randomized: whether the transform draws fresh randomness on every call.
        gradient_modes: the modes this defense supports; the first is the default.
    """

    kind = "preprocessing"
    differentiable: ClassVar[bool] = False
    randomized: ClassVar[bool] = False
    gradient_modes: ClassVar[tuple[GradientMode, ...]] = ("bpda", "exact")

    @classmethod
    def all_parameters(cls) -> tuple[Param, ...]:
        return (*cls.parameters,
                Param("gradient", str, None, "how attacks see gradients; none: the first mode",
                      choices=cls.gradient_modes, nullable=True),
                Param("eot_samples", int, None, "draws averaged per gradient (eot); none: 8 when randomized, else 1",
                      low=1, nullable=True))

    @property
    def gradient(self) -> GradientMode:
        """The gradient mode attacks see: the given one, else this defense's default."""
        return cast(GradientMode, self.params["gradient"] or self.gradient_modes[0])

    @property
    def eot_samples(self) -> int:
        """Draws averaged per gradient for randomized defenses (EOT)."""
        samples = self.params["eot_samples"]
        return int(samples) if samples is not None else (8 if self.randomized else 1)

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info["params"] = {k: v for k, v in info["params"].items() if k not in ("gradient", "eot_samples")}
        info.update(gradient=self.gradient, differentiable=self.differentiable, randomized=self.randomized)
        if self.gradient == "eot":
            info["eot_samples"] = self.eot_samples
        return info

    @abc.abstractmethod
    def transform(self, x: torch.Tensor, bounds: tuple[float, float] = (0.0, 1.0)) -> torch.Tensor:
        """The exact preprocessing of a batch whose values lie in ``bounds``."""

    def approximation(self, x: torch.Tensor, bounds: tuple[float, float] = (0.0, 1.0)) -> torch.Tensor:
        """A differentiable stand-in for ``transform``, for the ``approx`` gradient mode."""
        raise RobustError(f"defense {self.name!r} has no differentiable approximation")

    def wrap(self, model: Classifier) -> DefendedClassifier:
        """``model`` behind this preprocessing; attacks on the result target the whole pipeline."""
        self.params  # noqa: B018 - validate before any work
        return DefendedClassifier(model, self)


class _Straight(torch.autograd.Function):
    """Forward value ``out``, gradient passed to ``x`` unchanged (BPDA with the identity)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad, None


class Preprocessed(nn.Module):
    """The module of a defended classifier: the defense's transform, then the inner classifier."""

    def __init__(self, inner: Classifier, defense: PreprocessingDefense) -> None:
        super().__init__()
        self.inner = inner
        self.defense = defense
        self.mode = defense.gradient
        self.eot = defense.eot_samples if self.mode == "eot" else 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attacked = x.requires_grad and torch.is_grad_enabled()
        if not attacked or self.eot == 1:
            return self.inner(self.preprocess(x, attacked))
        return torch.stack([self.inner(self.preprocess(x, attacked)) for _ in range(self.eot)]).mean(0)

    def preprocess(self, x: torch.Tensor, attacked: bool) -> torch.Tensor:
        """The defense's transform, with gradients as its mode says."""
        bounds = self.inner.bounds
        if self.mode == "exact" or not attacked:
            return self.defense.transform(x, bounds).clamp(*bounds)
        with torch.no_grad():
            out = self.defense.transform(x, bounds).clamp(*bounds)
        if self.mode == "approx":
            approx = self.defense.approximation(x, bounds)
            return approx + (out - approx).detach()
        return _Straight.apply(x, out)


class DefendedClassifier(Wrapper):
    """A Classifier whose inputs pass through a preprocessing defense first.

    It is a plain :class:`Classifier` around :class:`Preprocessed` with the inner model's
    bounds and device (the inner one normalizes). Passes through the network are counted
    once, by the inner classifier, whose counter this one shares; precision, compilation
    and ``num_classes`` are the inner model's. ``defenses`` lists the chain, innermost
    first, so defenses stack by wrapping again.
    """

    def __init__(self, inner: Classifier, defense: PreprocessingDefense) -> None:
        super().__init__(Preprocessed(inner, defense), bounds=inner.bounds, device=inner.device)
        self.counter = inner.counter
        self.name = f"{inner.name}+{defense.name}"
        self.defenses: list[PreprocessingDefense] = [*defense_chain(inner), defense]

    @property
    def pipeline(self) -> Preprocessed:
        return cast(Preprocessed, self.module)

    @property
    def inner(self) -> Classifier:
        """The classifier behind this defense."""
        return self.pipeline.inner

    def wrapped(self) -> Classifier:
        return self.inner

    @property
    def defense(self) -> PreprocessingDefense:
        return self.pipeline.defense

    @property
    def exact_gradient_pass(self) -> bool:
        return self.inner.exact_gradient_pass and self.pipeline.eot == 1

    @property
    def precision(self) -> str:
        return self.inner.precision

    @property
    def compiled(self) -> bool:
        return self.inner.compiled

    def accelerate(self, precision: str = "fp32", compile: bool = False) -> Classifier:
        """Accelerate the network behind the defenses (the defenses themselves stay as they are)."""
        self.inner.accelerate(precision, compile)
        return self

    @contextlib.contextmanager
    def fitting(self) -> Iterator[Classifier]:
        with super().fitting(), self.inner.fitting():
            yield self



def defense_chain(model: Classifier) -> list[PreprocessingDefense]:
    """The preprocessing defenses in front of ``model``, innermost first (empty if none)."""
    return list(getattr(model, "defenses", []))


def undefended(model: Classifier) -> Classifier:
    """The classifier behind every preprocessing defense of ``model``."""
    while isinstance(model, DefendedClassifier):
        model = model.inner
    return model


def naive_model(model: Classifier) -> Classifier:
    """The same defended model with every defense's true (``exact``) gradients: the naive evaluation."""
    naive = undefended(model)
    for defense in defense_chain(model):
        naive = defense.with_params(gradient="exact").wrap(naive)
    return naive
