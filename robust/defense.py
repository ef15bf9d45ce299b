"""Defense base: a plugin that either wraps a Classifier (preprocessing) or trains a model.

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
from typing import Any, ClassVar

import torch
from torch import nn

from robust.errors import RobustError, suggest
from robust.model import Classifier

GRADIENT_MODES = ("exact", "bpda", "approx", "eot")


class Defense(abc.ABC):
    """Base of every defense plugin. Constructors only store keyword hyperparameters.

    Class attributes:
        name: registry name.
        kind: "preprocessing" (``wrap`` a Classifier) or "training" (produces a model).
        defaults: every hyperparameter with its default value.
        differentiable: whether autograd through the preprocessing gives useful gradients.
        randomized: whether the preprocessing draws fresh randomness on every call.
        gradient_modes: the modes this defense supports; the first is the default.
    """

    name: ClassVar[str] = ""
    kind: ClassVar[str] = "preprocessing"
    defaults: ClassVar[dict[str, Any]] = {}
    differentiable: ClassVar[bool] = False
    randomized: ClassVar[bool] = False
    gradient_modes: ClassVar[tuple[str, ...]] = ("bpda", "exact")

    def __init__(self, **params: Any) -> None:
        self._given = dict(params)

    @property
    def params(self) -> dict[str, Any]:
        """Defaults updated with the given hyperparameters (validated)."""
        unknown = sorted(set(self._given) - set(self.defaults) - {"gradient", "eot_samples"})
        if unknown:
            raise RobustError(f"unknown parameter {unknown[0]!r} for defense {self.name!r}"
                              f"{suggest(unknown[0], self.defaults)}; known: {', '.join(sorted(self.defaults))}")
        params = {**self.defaults, **{k: v for k, v in self._given.items() if k in self.defaults}}
        self.validate(params)
        return params

    @property
    def gradient(self) -> str:
        """The gradient mode attacks see: the given one, else this defense's default."""
        mode = self._given.get("gradient") or self.gradient_modes[0]
        if mode not in self.gradient_modes:
            raise RobustError(f"defense {self.name!r} supports gradient modes {', '.join(self.gradient_modes)}, "
                              f"got {mode!r}")
        return str(mode)

    @property
    def eot_samples(self) -> int:
        """Draws averaged per gradient for randomized defenses (EOT)."""
        samples = self._given.get("eot_samples", 8 if self.randomized else 1)
        if not isinstance(samples, int) or isinstance(samples, bool) or samples < 1:
            raise RobustError(f"eot_samples must be an integer >= 1, got {samples!r}")
        return samples

    def validate(self, params: dict[str, Any]) -> None:
        """Raise :class:`RobustError` for invalid hyperparameters (override)."""

    @staticmethod
    def check(condition: bool, message: str) -> None:
        if not condition:
            raise RobustError(message)

    def with_params(self, **params: Any) -> Defense:
        """A copy with some hyperparameters replaced (``gradient="exact"`` for a naive run)."""
        return type(self)(**{**self._given, **params})

    def describe(self) -> dict[str, Any]:
        """Name, hyperparameters and gradient mode, for the result file."""
        info: dict[str, Any] = {"name": self.name, "kind": self.kind, "params": self.params}
        if self.kind == "preprocessing":
            info.update(gradient=self.gradient, differentiable=self.differentiable, randomized=self.randomized)
            if self.gradient == "eot":
                info["eot_samples"] = self.eot_samples
        return info

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._given.items())
        return f"{type(self).__name__}({args})"

    # preprocessing defenses -------------------------------------------------------------

    def transform(self, x: torch.Tensor, bounds: tuple[float, float] = (0.0, 1.0)) -> torch.Tensor:
        """The exact preprocessing of a batch whose values lie in ``bounds`` (override)."""
        raise NotImplementedError(f"defense {self.name!r} defines no transform")

    def approximation(self, x: torch.Tensor, bounds: tuple[float, float] = (0.0, 1.0)) -> torch.Tensor:
        """A differentiable stand-in for ``transform``, for the ``approx`` gradient mode."""
        raise RobustError(f"defense {self.name!r} has no differentiable approximation")

    def wrap(self, model: Classifier) -> DefendedClassifier:
        """``model`` behind this preprocessing; attacks on the result target the whole pipeline."""
        if self.kind != "preprocessing":
            raise RobustError(f"defense {self.name!r} produces a model rather than wrapping one; "
                              "use `robust train` (or robust.training.train)")
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


class DefendedClassifier(Classifier):
    """A Classifier whose inputs pass through a preprocessing defense first.

    Bounds, device and pass counting are the inner model's; the defense chain is
    recorded in ``defenses`` (outermost last), so defenses stack by wrapping again.
    """

    def __init__(self, inner: Classifier, defense: Defense) -> None:
        nn.Module.__init__(self)
        self.inner = inner
        self.defense = defense
        self.mode = defense.gradient
        self.eot = defense.eot_samples if self.mode == "eot" else 1
        self.device = inner.device
        self.module = inner.module
        self.bounds = inner.bounds
        self.mean, self.std = None, None
        self.counter = inner.counter
        self.name = f"{inner.name}+{defense.name}"
        self._checked_outputs = True
        self.defenses: list[Defense] = [*getattr(inner, "defenses", []), defense]

    @property
    def exact_gradient_pass(self) -> bool:
        return self.inner.exact_gradient_pass and self.eot == 1

    @property  # type: ignore[override]
    def num_classes(self) -> int | None:
        return self.inner.num_classes

    @num_classes.setter
    def num_classes(self, value: int | None) -> None:
        self.inner.num_classes = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (x.requires_grad and torch.is_grad_enabled()) or self.eot == 1:
            return self.inner(self.preprocess(x))
        return torch.stack([self.inner(self.preprocess(x)) for _ in range(self.eot)]).mean(0)

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """The defense's transform, with gradients as its mode says."""
        lo, hi = self.bounds
        if self.mode == "exact" or not (x.requires_grad and torch.is_grad_enabled()):
            return self.defense.transform(x, self.bounds).clamp(lo, hi)
        with torch.no_grad():
            out = self.defense.transform(x, self.bounds).clamp(lo, hi)
        if self.mode == "approx":
            approx = self.defense.approximation(x, self.bounds)
            return approx + (out - approx).detach()
        return _Straight.apply(x, out)


def defense_chain(model: Classifier) -> list[Defense]:
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
