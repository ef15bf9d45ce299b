"""Plugin registries over the entry-point groups ``robust.attacks`` and ``robust.defenses``.

Built-in plugins register through the same entry points a third-party package uses,
so the core never imports them by name (timm's registry is the model: register,
list with wildcards, get, create; a name collision warns; ``None`` arguments are
dropped so that CLI defaults never override a plugin's own defaults).
"""

from __future__ import annotations

import fnmatch
import warnings
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from robust.errors import RobustError, suggest
from robust.params import Param, from_texts, parse_spec

T = TypeVar("T")


class Registry(Generic[T]):
    """Named plugin classes of one kind, loaded lazily from an entry-point group."""

    def __init__(self, group: str, kind: str) -> None:
        self.group = group
        self.kind = kind
        self._classes: dict[str, type[T]] = {}
        self._broken: dict[str, str] = {}
        self._loaded = False

    def register(self, name: str, cls: type[T]) -> type[T]:
        """Add ``cls`` under ``name``; a different class under a taken name warns and wins."""
        if name in self._classes and self._classes[name] is not cls:
            warnings.warn(f"{self.kind} {name!r} registered twice; {cls.__module__}.{cls.__qualname__} replaces "
                          f"{self._classes[name].__module__}.{self._classes[name].__qualname__}", stacklevel=2)
        self._classes[name] = cls
        return cls

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for ep in entry_points(group=self.group):
            try:
                self.register(ep.name, ep.load())
            except Exception as exc:  # a broken third-party plugin must not break the tool
                reason = f"{self.kind} plugin {ep.name!r} ({ep.value}) failed to load: {type(exc).__name__}: {exc}"
                self._broken[ep.name] = reason
                warnings.warn(reason, stacklevel=2)

    def names(self, pattern: str = "*") -> list[str]:
        """Registered names matching a shell-style wildcard, sorted."""
        self._load()
        return sorted(n for n in self._classes if fnmatch.fnmatch(n, pattern))

    def broken(self) -> dict[str, str]:
        """Plugins whose entry point failed to load, with the reason."""
        self._load()
        return dict(self._broken)

    def get(self, name: str) -> type[T]:
        """The class registered as ``name``; :class:`RobustError` with close matches otherwise."""
        self._load()
        if name in self._classes:
            return self._classes[name]
        if name in self._broken:
            raise RobustError(self._broken[name])
        known = ", ".join(self.names()) or "none installed"
        failed = f"; {len(self._broken)} failed to load ({', '.join(sorted(self._broken))})" if self._broken else ""
        raise RobustError(f"unknown {self.kind} {name!r}{suggest(name, [*self._classes, *self._broken])}; "
                          f"known: {known}{failed}")

    def create(self, name: str, **params: Any) -> T:
        """Instantiate ``name`` with the given parameters, dropping those that are None.

        ``name`` may be a spec, ``"pgd:steps=10,loss=margin"``: its values are converted by
        the plugin's typed declarations, and keyword ``params`` override them.
        """
        if not isinstance(name, str):
            raise RobustError(f"give the {self.kind} by its name or a spec such as 'pgd:steps=10', "
                              f"not a {type(name).__name__}")
        name, texts = parse_spec(name)
        cls = self.get(name)
        try:
            given = {**from_texts(declarations(cls), texts), **{k: v for k, v in params.items() if v is not None}}
        except RobustError as exc:
            raise RobustError(f"{self.kind} {name!r}: {exc}") from None
        return cls(**{k: v for k, v in given.items() if v is not None})


def declarations(cls: Any) -> tuple[Param, ...]:
    """A plugin class's typed hyperparameter declarations (none for a class that declares nothing)."""
    found = cls.all_parameters() if hasattr(cls, "all_parameters") else getattr(cls, "parameters", ())
    return tuple(found)


ATTACKS: Registry[Any] = Registry("robust.attacks", "attack")
DEFENSES: Registry[Any] = Registry("robust.defenses", "defense")


def create_attack(name: str, **params: Any) -> Any:
    """A configured attack: ``robust.create_attack("pgd", steps=10)``."""
    return ATTACKS.create(name, **params)


def create_defense(name: str, **params: Any) -> Any:
    """A configured defense: ``robust.create_defense("jpeg", quality=50)``."""
    return DEFENSES.create(name, **params)


def list_attacks(pattern: str = "*") -> list[str]:
    """Names of the installed attacks, optionally filtered by a wildcard."""
    return ATTACKS.names(pattern)


def list_defenses(pattern: str = "*") -> list[str]:
    """Names of the installed defenses, optionally filtered by a wildcard."""
    return DEFENSES.names(pattern)
