"""Normalization presets, and what a loader knows about its model's inputs.

Every loader returns an :class:`InputSettings` (bounds, per-channel mean and std, the resize
and crop image files need); what the user gives (:class:`Overrides`: ``bounds``, ``mean`` and
``std``, or a ``normalization`` preset) replaces the loader's own values, one by one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from robust.errors import RobustError, suggest
from robust.model import Preprocessing

Stats = tuple[float, ...]

IMAGENET_STATS: tuple[Stats, Stats] = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

PRESETS: dict[str, tuple[Stats, Stats] | None] = {
    "imagenet": IMAGENET_STATS,
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "none": None,
}
"""Per-channel (mean, std) of each named preset, for inputs in [0, 1]; ``none``: no normalization."""


@dataclass(frozen=True)
class InputSettings:
    """What a model expects, as its loader knows it.

    Attributes:
        bounds: smallest and largest valid input value (input space, where eps is measured).
        mean: per-channel mean subtracted inside the model (None: nothing subtracted).
        std: per-channel standard deviation divided by inside the model (None: no division).
        preprocessing: the resize and center crop image files need before this model.
    """

    bounds: tuple[float, float] = (0.0, 1.0)
    mean: Stats | None = None
    std: Stats | None = None
    preprocessing: Preprocessing | None = None


IMAGENET = InputSettings(mean=IMAGENET_STATS[0], std=IMAGENET_STATS[1], preprocessing=Preprocessing(resize=256, crop=224))
"""torchvision's ImageNet models: ImageNet mean/std, resize 256 then center crop 224."""


@dataclass(frozen=True)
class Overrides:
    """What the user said about the inputs; each None keeps the loader's own value.

    Attributes:
        bounds: (low, high) replacing the loader's bounds.
        mean: per-channel mean, given together with ``std``.
        std: per-channel standard deviation, given together with ``mean``.
        normalization: a preset name of :data:`PRESETS` instead of ``mean``/``std``.
    """

    bounds: Sequence[float] | None = None
    mean: Sequence[float] | None = None
    std: Sequence[float] | None = None
    normalization: str | None = None

    def given(self) -> list[str]:
        """The names of the settings that were given."""
        return [name for name in ("bounds", "mean", "std", "normalization") if getattr(self, name) is not None]

    def check(self) -> None:
        """Raise :class:`RobustError` for a contradiction or a bad value, before any model is built."""
        if self.bounds is not None:
            checked_bounds(self.bounds)
        if self.normalization is not None:
            if self.mean is not None or self.std is not None:
                raise RobustError(f"give either the normalization preset {self.normalization!r} or an explicit "
                                  "mean and std, not both")
            preset(self.normalization)
        if (self.mean is None) != (self.std is None):
            given, missing = ("mean", "std") if self.std is None else ("std", "mean")
            raise RobustError(f"a {given} was given without a {missing}: give both (one value per channel)")
        if self.mean is not None and self.std is not None:
            checked_stats(self.mean, self.std)

    def apply(self, defaults: InputSettings) -> InputSettings:
        """``defaults`` with the given settings in their place (call :meth:`check` first)."""
        bounds = checked_bounds(self.bounds) if self.bounds is not None else defaults.bounds
        mean, std = defaults.mean, defaults.std
        if self.normalization is not None:
            stats = preset(self.normalization)
            mean, std = stats if stats is not None else (None, None)
        elif self.mean is not None and self.std is not None:
            mean, std = checked_stats(self.mean, self.std)
        return InputSettings(bounds, mean, std, defaults.preprocessing)


def preset(name: str) -> tuple[Stats, Stats] | None:
    """The (mean, std) of a preset name (``none``: None); :class:`RobustError` for an unknown one."""
    key = name.strip().lower()
    if key not in PRESETS:
        raise RobustError(f"unknown normalization {name!r}{suggest(key, PRESETS)}; "
                          f"use one of {', '.join(PRESETS)}")
    return PRESETS[key]


def checked_bounds(bounds: Sequence[float]) -> tuple[float, float]:
    """``bounds`` as (low, high) floats, finite and with low < high."""
    values = tuple(float(v) for v in bounds)
    if len(values) != 2 or not all(math.isfinite(v) for v in values):
        raise RobustError(f"bounds must be two finite numbers (low, high), got {tuple(bounds)}")
    if not values[0] < values[1]:
        raise RobustError(f"bounds must be (low, high) with low < high, got {values}")
    return values[0], values[1]


def checked_stats(mean: Sequence[float], std: Sequence[float]) -> tuple[Stats, Stats]:
    """Per-channel ``mean`` and ``std`` as tuples: as many of each, finite, every std > 0."""
    m, s = tuple(float(v) for v in mean), tuple(float(v) for v in std)
    if not m or len(m) != len(s):
        raise RobustError(f"mean and std need one value per channel each, got {len(m)} mean and {len(s)} std "
                          f"values ({m} and {s})")
    if not all(math.isfinite(v) for v in m + s):
        raise RobustError(f"mean and std must be finite numbers, got {m} and {s}")
    if min(s) <= 0:
        raise RobustError(f"every std must be > 0, got {s}")
    return m, s
