"""A small name -> ``"module:attr"`` registry that imports on first use."""

from __future__ import annotations

import importlib
from typing import Any, Generic, TypeVar

from qwen_agent.errors import RegistryError

T = TypeVar("T")

__all__ = ["LazyRegistry"]


class LazyRegistry(Generic[T]):
    """Maps names to objects or to ``"package.module:attr"`` strings resolved lazily."""

    def __init__(self, kind: str, entries: dict[str, str | T] | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, str | T] = dict(entries or {})

    def register(self, name: str, target: str | T, *, replace: bool = False) -> None:
        """Register ``target`` under ``name``; a taken name raises unless ``replace``."""
        if not name or not isinstance(name, str):
            raise RegistryError(f"{self.kind} name must be a non-empty string, got {name!r}")
        if name in self._entries and not replace:
            raise RegistryError(
                f"{self.kind} {name!r} is already registered; pass replace=True to override"
            )
        self._entries[name] = target

    def unregister(self, name: str) -> None:
        if name not in self._entries:
            raise RegistryError(f"no {self.kind} named {name!r}")
        del self._entries[name]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def get(self, name: str) -> T:
        """The object registered as ``name``, importing it on first use."""
        try:
            target = self._entries[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise RegistryError(f"unknown {self.kind} {name!r}; known: {known}") from None
        if isinstance(target, str):
            target = self._entries[name] = _import_target(target, self.kind, name)
        return target  # type: ignore[return-value]


def _import_target(spec: str, kind: str, name: str) -> Any:
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise RegistryError(
            f"{kind} {name!r} needs {module_name!r}, which failed to import: {exc}. "
            "Install the matching extra (see the README)."
        ) from exc
    try:
        return getattr(module, attr) if attr else module
    except AttributeError:
        raise RegistryError(f"{kind} {name!r}: {module_name!r} has no {attr!r}") from None
