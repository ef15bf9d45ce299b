"""``--bounds``, ``--mean``, ``--std`` and ``--normalization``: from text to :func:`robust.load_model`'s arguments."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from robust.errors import RobustError


def model_inputs(bounds: str | None, mean: str | None, std: str | None, normalization: str | None) -> dict[str, Any]:
    """The keyword arguments of ``load_model`` for what was given (each None: the loader decides).

    Whether mean and std come together and agree in length is checked by ``load_model``.
    """
    return {
        "bounds": parse_bounds(bounds) if bounds is not None else None,
        "mean": parse_values(mean, "--mean") if mean is not None else None,
        "std": parse_values(std, "--std") if std is not None else None,
        "normalization": normalization,
    }


def parse_bounds(text: str) -> tuple[float, float]:
    """``"0,255"`` -> (0.0, 255.0); LO < HI, fractions such as ``-1/2`` allowed."""
    values = parse_values(text, "--bounds")
    if len(values) != 2:
        raise RobustError(f"--bounds takes LO,HI (two numbers, e.g. 0,1 or 0,255), got {text!r}")
    if not values[0] < values[1]:
        raise RobustError(f"--bounds must be LO,HI with LO < HI, got {text!r}")
    return values[0], values[1]


def parse_values(text: str, what: str) -> tuple[float, ...]:
    """Comma-separated finite numbers (``0.485,0.456,0.406`` or ``1/2,1/2,1/2``)."""
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise RobustError(f"{what} takes comma-separated numbers such as 0.485,0.456,0.406, got {text!r}")
    return tuple(_number(item, what) for item in items)


def _number(text: str, what: str) -> float:
    try:
        value = float(Fraction(text)) if "/" in text else float(text)
    except (ValueError, ZeroDivisionError):
        raise RobustError(f"{what} takes numbers such as 0.5 or 8/255, got {text!r}") from None
    if not math.isfinite(value):
        raise RobustError(f"{what} takes finite numbers, got {text!r}")
    return value
