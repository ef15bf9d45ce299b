"""Typed hyperparameters: one declaration per parameter, used everywhere it matters.

A plugin lists its hyperparameters as :class:`Param` declarations (type, range, choices,
default, doc). The same declarations validate values given from Python, convert the text of
a command-line spec (``pgd:steps=10,loss=margin``), print ``robust list``, drive the
conformance kit and name the rows of the framework parameter tables, so a value is either
valid everywhere or refused everywhere with the same message.

Example:
    >>> STEPS = Param("steps", int, 40, "gradient steps per restart", low=1)
    >>> STEPS.check(True)
    Traceback (most recent call last):
    robust.errors.RobustError: steps must be an integer >= 1, got True
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, ClassVar, Literal, TypeVar

from robust.errors import RobustError, suggest

Norm = Literal["linf", "l2", "l1", "l0"]
NORMS: tuple[Norm, ...] = ("linf", "l2")  # the threat models of the gradient family and most attacks
ALL_NORMS: tuple[Norm, ...] = ("linf", "l2", "l1", "l0")  # every distance the harness measures and projects
TENSOR = "tensor"  # the type of parameters that only Python can give (starting points, ...)
_NAMES = {int: "an integer", float: "a number", bool: "True or False", str: "a string", TENSOR: "a tensor"}
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


@dataclass(frozen=True)
class Param:
    """One hyperparameter of an attack or a defense.

    Attributes:
        name: keyword name (``steps``); a command-line spec may spell it ``steps`` or ``steps``.
        type: ``int``, ``float`` (ints accepted), ``bool``, ``str``, ``"tensor"``, or None for
            an undeclared type (plugins that only give ``defaults``): anything is accepted.
        default: the value in force when none is given; None where ``nullable``.
        doc: one line, with units (eps-like values are in input space).
        low, high: inclusive bounds for numbers; ``open_low``/``open_high`` make them strict.
        choices: the allowed values of a string parameter.
        nullable: None is a valid value (what None means is said in ``doc``).
    """

    name: str
    type: Any
    default: Any
    doc: str = ""
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] | None = None
    nullable: bool = False
    open_low: bool = False
    open_high: bool = False

    def describe(self) -> str:
        """What a valid value is, for messages and listings: ``an integer >= 1``."""
        if self.choices is not None:
            text = "one of " + ", ".join(str(c) for c in self.choices)
        else:
            text = _NAMES.get(self.type, "any value")
            text += self._range()
        return text + (" (or none)" if self.nullable else "")

    def _range(self) -> str:
        if self.low is not None and self.high is not None and not (self.open_low or self.open_high):
            return f" from {_num(self.low)} to {_num(self.high)}"
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.open_low else '>='} {_num(self.low)}")
        if self.high is not None:
            parts.append(f"{'<' if self.open_high else '<='} {_num(self.high)}")
        return (" " + " and ".join(parts)) if parts else ""

    def check(self, value: Any) -> Any:
        """Return ``value`` if it is valid; :class:`RobustError` naming the parameter otherwise."""
        if value is None and self.nullable:
            return value
        if not self._valid(value):
            raise RobustError(f"{self.name} must be {self.describe()}, got {value!r}")
        return value

    def _valid(self, value: Any) -> bool:
        if self.type is None:
            return True
        if self.type == TENSOR:
            return _is_tensor(value)
        if self.choices is not None:
            return isinstance(value, type(self.choices[0])) and value in self.choices
        if self.type is bool:
            return isinstance(value, bool)
        numeric = (int, float) if self.type is float else (self.type,)
        if isinstance(value, bool) or not isinstance(value, numeric):
            return False
        return self.type is str or self._in_range(float(value))

    def _in_range(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.open_low else value < self.low):
            return False
        return self.high is None or (value < self.high if self.open_high else value <= self.high)

    def from_text(self, text: str) -> Any:
        """The value that the command-line text ``text`` stands for (validated)."""
        low = text.strip().lower()
        if self.nullable and low in ("none", "null"):
            return None
        if self.type == TENSOR:
            raise RobustError(f"{self.name} takes a tensor and can only be given from Python")
        if self.type is None:
            return guess(text)
        return self.check(self._convert(text.strip(), low))

    def _convert(self, text: str, low: str) -> Any:
        if self.type is bool:
            return True if low in _TRUE else False if low in _FALSE else text
        if self.type is int:
            with contextlib.suppress(ValueError):
                return int(text)
            return text
        if self.type is float:
            with contextlib.suppress(ValueError, ZeroDivisionError):
                return float(Fraction(text)) if "/" in text else float(text)
            return text
        return text


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _is_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "shape")


def guess(text: str) -> Any:
    """An undeclared parameter's value from text: bool, none, int, float, fraction, else the string."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for cast in (int, float):
        with contextlib.suppress(ValueError):
            return cast(text)
    if re.fullmatch(r"[0-9.]+/[0-9.]+", text.strip()):
        with contextlib.suppress(ValueError, ZeroDivisionError):
            return float(Fraction(text))
    return text


def declared(defaults: Mapping[str, Any]) -> tuple[Param, ...]:
    """Untyped declarations for a plugin that only gives a ``defaults`` dict."""
    return tuple(Param(name, None, value, nullable=True) for name, value in defaults.items())


def by_name(params: Iterable[Param]) -> dict[str, Param]:
    """The declarations keyed by name."""
    return {p.name: p for p in params}


def check_values(declarations: Iterable[Param], given: Mapping[str, Any], owner: str) -> dict[str, Any]:
    """Every declared parameter's value in force (given, else default), validated.

    Raises:
        RobustError: an undeclared name (with the closest declared one) or an invalid value.
    """
    table = by_name(declarations)
    unknown = sorted(set(given) - set(table))
    if unknown:
        hints = "".join(suggest(key, table) for key in unknown)
        takes = ", ".join(sorted(table)) or "no parameters"
        raise RobustError(f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
                          f"for {owner}{hints}; it takes {takes}")
    values = {name: p.default for name, p in table.items()}
    for name, value in given.items():
        if value is not None:
            try:
                values[name] = table[name].check(value)
            except RobustError as exc:
                raise RobustError(f"{owner}: {exc}") from None
    return values


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """``pgd:steps=10,restarts=2`` -> ("pgd", {"steps": "10", "restarts": "2"}); the values stay text.

    Dashes in keys become underscores (``random-start`` is ``random_start``).
    """
    name, _, rest = spec.partition(":")
    params: dict[str, str] = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise RobustError(f"parameters must look like name:key=value,key=value, got {spec!r}")
        key = key.strip().replace("-", "_")
        if key in params:
            raise RobustError(f"parameter {key!r} is given twice in {spec!r}")
        params[key] = value.strip()
    if not name.strip():
        raise RobustError(f"a spec starts with a name, as in pgd:steps=10; got {spec!r}")
    return name.strip(), params


def from_texts(declarations: Iterable[Param], texts: Mapping[str, str]) -> dict[str, Any]:
    """Convert spec texts by their declarations; undeclared names are kept as guessed values,
    so that validation names them with the closest declared one."""
    table = by_name(declarations)
    return {key: table[key].from_text(text) if key in table else guess(text) for key, text in texts.items()}


def parse_number(text: str, what: str) -> float:
    """A finite number >= 0 from ``0.3``, ``8/255`` or ``1e-2``; :class:`RobustError` naming ``what`` otherwise."""
    try:
        value = float(Fraction(text.strip())) if "/" in text else float(text)
    except (ValueError, ZeroDivisionError):
        raise RobustError(f"{what} must be a number such as 0.3 or 8/255, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise RobustError(f"{what} must be a finite number >= 0, got {text!r}")
    return value


def listing(declarations: Iterable[Param]) -> list[str]:
    """One line per parameter for ``robust list``: name, what it takes, default, doc."""
    lines = []
    for p in declarations:
        default = "none" if p.default is None else repr(p.default) if isinstance(p.default, str) else str(p.default)
        lines.append(f"{p.name}: {p.describe()}; default {default}" + (f". {p.doc}" if p.doc else ""))
    return lines


_C = TypeVar("_C", bound="Configurable")


class Configurable:
    """What attacks and defenses share: keyword hyperparameters, stored by the constructor and
    validated against the class's typed declarations (scikit-learn's rule: no logic in ``__init__``).

    Subclasses set ``name`` and ``parameters``; ``defaults`` follows. A plugin written against
    the older interface may give a ``defaults`` dict alone: its parameters are then untyped.
    """

    name: ClassVar[str] = ""
    role: ClassVar[str] = "plugin"  # how messages call it: "attack", "defense"
    parameters: ClassVar[tuple[Param, ...]] = ()
    defaults: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "parameters" not in cls.__dict__ and "defaults" in cls.__dict__:
            cls.parameters = declared(cls.__dict__["defaults"])
        cls.defaults = {p.name: p.default for p in cls.all_parameters()}

    @classmethod
    def all_parameters(cls) -> tuple[Param, ...]:
        """Every declared hyperparameter (a base class may add its own)."""
        return cls.parameters

    def __init__(self, **params: Any) -> None:
        self._given = dict(params)

    @property
    def given(self) -> dict[str, Any]:
        """The hyperparameters given to the constructor, as given."""
        return dict(self._given)

    def checked_params(self) -> dict[str, Any]:
        """Every hyperparameter's value in force, validated by the declarations and then by :meth:`validate`."""
        values = check_values(self.all_parameters(), self._given, f"{self.role} {self.name!r}")
        self.validate(values)
        return values

    def validate(self, params: dict[str, Any]) -> None:
        """Check what the declarations cannot (relations between parameters); override in subclasses."""

    @staticmethod
    def check(condition: bool, message: str) -> None:
        """Raise :class:`RobustError` with ``message`` unless ``condition`` holds."""
        if not condition:
            raise RobustError(message)

    def with_params(self: _C, **params: Any) -> _C:
        """A copy with some hyperparameters replaced (``gradient="exact"`` for a defense's naive run)."""
        return type(self)(**{**self._given, **params})

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._given.items())
        return f"{type(self).__name__}({args})"
