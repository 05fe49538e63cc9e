"""What every layout adapter shares: the registry, the row position, and field checks with clear errors."""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from prmkit.data.readers import locate, origin_stem
from prmkit.errors import RecipeError
from prmkit.records import Record
from prmkit.registry import Registry


class RowError(ValueError):
    """A row an adapter cannot convert; `load_records` adds the file and line. `place` overrides the row blamed."""

    def __init__(self, message: str, place: Place | None = None) -> None:
        super().__init__(message)
        self.place = place


@dataclass(frozen=True)
class Place:
    """Where a row came from: used in error messages and for fallback record ids."""

    origin: str
    number: int

    def __str__(self) -> str:
        return locate(self.origin, self.number)

    @property
    def fallback_id(self) -> str:
        """'<file stem>-<line>': stable for the same file, unique within it."""
        return f"{origin_stem(self.origin)}-{self.number}"


class Adapter(ABC):
    """Turns rows of one public layout into Records. Subclasses declare options as keyword arguments of __init__.

    `signatures` are the key sets that identify the layout (any one suffices) for layout="auto".
    Adapters that must see several rows before a record is complete keep state and emit it from `finish`.
    """

    name: ClassVar[str]
    signatures: ClassVar[tuple[frozenset[str], ...]]

    @abstractmethod
    def convert(self, row: dict[str, Any], place: Place) -> list[Record]:
        """Records made from one row: usually one, several for multi-record rows, none while a group is open."""

    def finish(self) -> list[Record]:
        """Records still held when the rows run out (grouped layouts); none for row-by-row layouts."""
        return []

    @classmethod
    def matches(cls, row: dict[str, Any]) -> frozenset[str] | None:
        """The largest signature the row carries, or None."""
        fits = [s for s in cls.signatures if s <= row.keys()]
        return max(fits, key=len) if fits else None

    @classmethod
    def options(cls) -> dict[str, Any]:
        """Option name -> default, read from __init__'s keyword arguments."""
        sig = inspect.signature(cls.__init__)
        return {
            n: p.default
            for n, p in sig.parameters.items()
            if n != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        }

    @classmethod
    def create(cls, options: dict[str, Any]) -> Adapter:
        """Build with checked options: an unknown name or a non-bool for a bool option is a RecipeError."""
        allowed = cls.options()
        for key, value in options.items():
            if key not in allowed:
                names = ", ".join(sorted(allowed)) or "none"
                raise RecipeError(f"data layout {cls.name!r} has no option {key!r}; allowed options: {names}")
            if isinstance(allowed[key], bool) and not isinstance(value, bool):
                raise RecipeError(f"data layout {cls.name!r} option {key!r} must be true or false, got {value!r}")
        return cls(**options)


LAYOUTS: Registry[type[Adapter]] = Registry("data layout")


def register(cls: type[Adapter]) -> type[Adapter]:
    """Class decorator: registers an adapter under its `name`."""
    return LAYOUTS.register(cls.name)(cls)


def need(row: dict[str, Any], key: str) -> Any:
    """The value of a required field; RowError naming the field when it is missing or null."""
    if key not in row:
        raise RowError(f"missing field {key!r} (row has: {', '.join(sorted(row)) or 'nothing'})")
    if row[key] is None:
        raise RowError(f"field {key!r} is null")
    return row[key]


def need_str(row: dict[str, Any], key: str) -> str:
    value = need(row, key)
    if not isinstance(value, str):
        raise RowError(f"field {key!r} must be a string, got {type(value).__name__}")
    return value


def need_str_list(row: dict[str, Any], key: str) -> list[str]:
    value = need(row, key)
    if not isinstance(value, (list, tuple)) or not all(isinstance(s, str) for s in value):
        raise RowError(f"field {key!r} must be a list of strings")
    return list(value)


def need_int(row: dict[str, Any], key: str, allow_null: bool = False) -> int | None:
    if allow_null and key in row and row[key] is None:
        return None
    value = need(row, key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RowError(f"field {key!r} must be an integer, got {value!r}")
    return value


def first_error_labels(n_steps: int, first_error: int) -> list[float]:
    """Labels for first-error data: 1 before the error, 0 from it on (a solution is wrong once it has erred)."""
    if first_error < 0:
        return [1.0] * n_steps
    return [1.0] * first_error + [0.0] * (n_steps - first_error)


def row_id(row: dict[str, Any], place: Place, *keys: str) -> str:
    """The row's own id under the first present key, else '<file stem>-<line>'."""
    for key in keys:
        if row.get(key) not in (None, ""):
            return str(row[key])
    return place.fallback_id
