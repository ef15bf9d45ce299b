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

T = TypeVar("T")


class Registry(Generic[T]):
    """Named plugin classes of one kind, loaded lazily from an entry-point group."""

    def __init__(self, group: str, kind: str) -> None:
        self.group = group
        self.kind = kind
        self._classes: dict[str, type[T]] = {}
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
                warnings.warn(f"could not load {self.kind} plugin {ep.name!r} ({ep.value}): {exc}", stacklevel=2)

    def names(self, pattern: str = "*") -> list[str]:
        """Registered names matching a shell-style wildcard, sorted."""
        self._load()
        return sorted(n for n in self._classes if fnmatch.fnmatch(n, pattern))

    def get(self, name: str) -> type[T]:
        """The class registered as ``name``; :class:`RobustError` with close matches otherwise."""
        self._load()
        if name not in self._classes:
            known = ", ".join(self.names()) or "none installed"
            raise RobustError(f"unknown {self.kind} {name!r}{suggest(name, self._classes)}; known: {known}")
        return self._classes[name]

    def create(self, name: str, **params: Any) -> T:
        """Instantiate ``name`` with the given parameters, dropping those that are None."""
        return self.get(name)(**{k: v for k, v in params.items() if v is not None})


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
