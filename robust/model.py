"""Classifier: the one wrapper every attack, defense and evaluation talks to."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from robust.errors import RobustError


@dataclass
class PassCounter:
    """Forward and backward passes through the wrapped module: batched calls, and samples (rows) in them."""

    forward: int = 0
    backward: int = 0
    forward_rows: int = 0
    backward_rows: int = 0


@dataclass(frozen=True)
class Preprocessing:
    """How images are brought to a model's input size before it sees them (its loader's knowledge).

    Attributes:
        resize: the short side is resized to this many pixels first (None: no resize).
        crop: then the center ``crop`` x ``crop`` pixels are kept (None: no crop).
    """

    resize: int | None = None
    crop: int | None = None


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/``"auto"`` picks CUDA when available, else the CPU."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise RobustError(f"unknown device {device!r}: use auto, cpu or cuda") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise RobustError("device 'cuda' was asked for, but no CUDA device is available")
    return resolved


def _stats(values: float | Sequence[float] | torch.Tensor | None, device: torch.device) -> torch.Tensor | None:
    if values is None:
        return None
    return torch.as_tensor(values, dtype=torch.float32, device=device).reshape(1, -1, 1, 1)


class Classifier(nn.Module):
    """Wrap any ``nn.Module`` that maps images to logits.

    Normalization happens inside, so ``eps`` and ``bounds`` are in input space.

    Args:
        module: maps a batch (N, C, H, W) to logits (N, K).
        bounds: smallest and largest valid input value.
        mean: per-channel mean subtracted before the module (optional).
        std: per-channel standard deviation divided by before the module (optional).
        device: ``"auto"``/``None`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
        preprocessing: the resize and center crop that image files need before this model
            (what its loader knows, e.g. 256 then 224 for ImageNet models); image datasets
            read for it use this unless told otherwise.

    The module may return logits (N, K), a tuple or list whose first element is the logits
    (as many research models do), or a mapping or output object with a ``logits`` entry
    (Hugging Face models): the logits are taken from it.

    Example:
        >>> model = robust.Classifier(net, bounds=(0, 1), mean=[0.1307], std=[0.3081])
        >>> logits = model(x)
    """

    def __init__(
        self,
        module: nn.Module,
        *,
        bounds: tuple[float, float] = (0.0, 1.0),
        mean: float | Sequence[float] | torch.Tensor | None = None,
        std: float | Sequence[float] | torch.Tensor | None = None,
        device: str | torch.device | None = None,
        preprocessing: Preprocessing | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(module, nn.Module):
            raise RobustError(f"Classifier wraps a torch.nn.Module, got {type(module).__name__}")
        lo, hi = float(bounds[0]), float(bounds[1])
        if not lo < hi:
            raise RobustError(f"bounds must be (low, high) with low < high, got {bounds}")
        self.device = resolve_device(device)
        self.module = module.to(self.device)
        self.bounds = (lo, hi)
        self.mean = _stats(mean, self.device)
        self.std = _stats(std, self.device)
        self.preprocessing = preprocessing
        self.memo: dict[Any, Any] | None = None  # what attacks may keep for one evaluation (robust.evaluate sets it)
        self.counter = PassCounter()
        self.name = type(module).__name__
        self._num_classes: int | None = None
        self._checked_outputs = False
        self._precision = "fp32"
        self._compiled: Any = None
        self._fitting = False

    counts_passes = True  # a wrapper around another Classifier leaves the counting to it

    @property
    def num_classes(self) -> int | None:
        """Number of logits, known after the first forward pass."""
        return self._num_classes

    @num_classes.setter
    def num_classes(self, value: int | None) -> None:
        self._num_classes = value

    @property
    def precision(self) -> str:
        """"fp32", or "bf16" for autocast gradient passes (see :meth:`accelerate`)."""
        return self._precision

    @property
    def compiled(self) -> bool:
        """Whether the module runs through ``torch.compile``."""
        return self._compiled is not None

    @contextlib.contextmanager
    def fitting(self) -> Iterator[Classifier]:
        """Inside the block, forward passes build a graph for the weights (training) in train mode;
        the modules' modes are restored afterwards."""
        previous, self._fitting = self._fitting, True
        with self._modes(train=True):
            try:
                yield self
            finally:
                self._fitting = previous

    @contextlib.contextmanager
    def _modes(self, train: bool) -> Iterator[None]:
        """Every submodule in train (or eval) mode inside the block, each one's own mode restored after."""
        modes = [(m, m.training) for m in self.module.modules()]
        self.module.train(train)
        try:
            yield
        finally:
            for m, training in modes:
                m.training = training

    @property
    def exact_gradient_pass(self) -> bool:
        """Whether logits from a gradient pass equal those of a plain (judging) pass."""
        return self.precision == "fp32"

    def accelerate(self, precision: str = "fp32", compile: bool = False) -> Classifier:
        """Use bf16 autocast for gradient passes (attack steps) and/or ``torch.compile``.

        Passes without gradients (clean predictions and every success check) stay in fp32,
        so a bf16 run never reports success on a point that fp32 would judge robust. On CUDA,
        bf16 also switches the module to channels-last memory layout.

        Args:
            precision: "fp32" or "bf16".
            compile: compile the module with ``torch.compile`` (the first calls are slow).
        """
        if precision not in ("fp32", "bf16"):
            raise RobustError(f"precision must be fp32 or bf16, got {precision!r}")
        self._precision = precision
        if precision == "bf16" and self.device.type == "cuda":
            self.module.to(memory_format=torch.channels_last)
        self._compiled = torch.compile(self.module) if compile else None
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for ``x``; builds an autograd graph only when ``x`` requires one, or inside :meth:`fitting`."""
        grad = (x.requires_grad or self._fitting) and torch.is_grad_enabled()
        with torch.set_grad_enabled(grad):
            z = x
            if self.mean is not None:
                z = z - self.mean
            if self.std is not None:
                z = z / self.std
            logits = self._logits(z, fast=grad and self.precision == "bf16")
        if self.counts_passes:
            self.counter.forward += 1
            self.counter.forward_rows += int(x.shape[0])
            if logits.requires_grad:
                logits.register_hook(self._count_backward)
        if not self._checked_outputs:
            self._checked_outputs = True
            self._observe(logits)
        return logits

    def _logits(self, z: torch.Tensor, fast: bool) -> torch.Tensor:
        module = self._compiled if self._compiled is not None else self.module
        if not fast:
            return logits_of(module(z))
        if self.device.type == "cuda" and z.ndim == 4:
            z = z.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=torch.bfloat16):
            logits = logits_of(module(z))
        return logits.float()

    def _count_backward(self, grad: torch.Tensor) -> None:
        self.counter.backward += 1
        self.counter.backward_rows += int(grad.shape[0])

    def _observe(self, logits: torch.Tensor) -> None:
        """On the first forward pass: check the output shape, note the classes, warn on probabilities."""
        if logits.ndim != 2:
            raise RobustError(f"the model must return logits of shape (N, classes), got {tuple(logits.shape)}")
        self.num_classes = int(logits.shape[1])
        detached = logits.detach()
        sums = detached.sum(dim=1)
        if bool((detached >= 0).all()) and bool(torch.allclose(sums, torch.ones_like(sums), atol=1e-3)):
            warnings.warn(
                "the model's outputs sum to 1 per row: it looks like it returns probabilities; "
                "attacks need logits (remove the final softmax)",
                stacklevel=3,
            )

    @contextlib.contextmanager
    def evaluating(self) -> Iterator[Classifier]:
        """Run the module in eval mode inside the block and restore its modes afterwards."""
        with self._modes(train=False):
            yield self

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """Predicted labels for ``x`` in batches, on the model's device."""
        with self.evaluating():
            out = [self(x[i:i + batch_size].to(self.device, non_blocking=True)).argmax(1)
                   for i in range(0, len(x), batch_size)]
        return torch.cat(out) if out else torch.empty(0, dtype=torch.long, device=self.device)

    def check_inputs(self, x: torch.Tensor) -> None:
        """Raise :class:`RobustError` for non-finite inputs or values outside ``bounds``."""
        if not x.dtype.is_floating_point:
            raise RobustError(f"inputs must be floating point in {self.bounds}, got {x.dtype}")
        if x.ndim < 2 or x.numel() == 0:
            raise RobustError(f"inputs must be a non-empty batch, got shape {tuple(x.shape)}")
        if not bool(torch.isfinite(x).all()):
            raise RobustError("inputs contain NaN or infinite values")
        lo, hi = float(x.min()), float(x.max())
        if lo < self.bounds[0] - 1e-6 or hi > self.bounds[1] + 1e-6:
            raise RobustError(
                f"inputs lie in [{lo:.4g}, {hi:.4g}], outside the model's bounds {self.bounds}; "
                "pass unnormalized inputs and give mean/std to the Classifier"
            )



class Wrapper(Classifier):
    """A Classifier in front of another one (:meth:`wrapped`), which counts the passes through the
    network, checks its outputs and knows the number of classes; subclasses share its counter."""

    counts_passes = False

    def wrapped(self) -> Classifier:
        """The classifier this one is in front of."""
        raise NotImplementedError

    def _observe(self, logits: torch.Tensor) -> None:
        """The wrapped classifier checks the network's outputs."""

    @property  # type: ignore[override]
    def num_classes(self) -> int | None:
        return self.wrapped().num_classes

    @num_classes.setter
    def num_classes(self, value: int | None) -> None:
        self.wrapped().num_classes = value

def logits_of(output: Any) -> torch.Tensor:
    """The logits in a module's output: the tensor itself, the first element of a tuple or list,
    or the ``logits`` entry of a mapping or output object (Hugging Face's ``ModelOutput``)."""
    if torch.is_tensor(output):
        return output
    if isinstance(output, (tuple, list)) and output and torch.is_tensor(output[0]):
        return output[0]
    found = output.get("logits") if isinstance(output, Mapping) else getattr(output, "logits", None)
    if torch.is_tensor(found):
        return found
    raise RobustError(f"the model returned a {type(output).__name__}; it must return logits (a tensor), a tuple "
                      "whose first element is the logits, or a mapping or object with a 'logits' tensor")


def as_classifier(model: nn.Module, device: str | torch.device | None = None) -> Classifier:
    """Return ``model`` if it is a Classifier, else wrap it with default bounds (0, 1)."""
    if isinstance(model, Classifier):
        return model
    return Classifier(model, device=device)
