"""A named registry of components (formats, tasks, methods, engines, data layouts) instead of if-chains."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from prmkit.errors import RecipeError

T = TypeVar("T")


def closest(name: str, choices: list[str]) -> str | None:
    """The most similar valid name, for 'did you mean' hints."""
    hits = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    return hits[0] if hits else None


class Registry(Generic[T]):
    """Maps names to components; an unknown name is a RecipeError listing the allowed names."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(item: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = item
            return item

        return deco

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            hint = closest(name, self.names())
            msg = f"unknown {self.kind} {name!r}; allowed: {', '.join(self.names())}"
            if hint:
                msg += f" (did you mean {hint!r}?)"
            raise RecipeError(msg) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
