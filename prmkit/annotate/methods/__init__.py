"""Step-labelling methods, by name. Each labels a chunk of records in rounds of batched rollouts.

A method returns, per record, an `Annotation`: hard labels (and soft ones where it has them), the first
error it found, and the compute it spent. Records it rejects (consensus filtering) come back with
`kept=False`. A method with `per_problem = True` (omega) labels whole problems and returns (record,
annotation) pairs for the records it writes, which need not be its input solutions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from prmkit.annotate.rollouts import RolloutCost, RolloutRunner
from prmkit.records import Record
from prmkit.registry import Registry


@dataclass
class Annotation:
    hard: list[float] | None
    soft: list[float] | None
    first_error: int | None
    cost: RolloutCost = field(default_factory=RolloutCost)
    kept: bool = True
    details: dict[str, Any] = field(default_factory=dict)


def labels_from_first_error(n_steps: int, first_error: int) -> list[float]:
    """Prefix labels: good before the first error, bad from it on (-1: all good)."""
    if first_error < 0:
        return [1.0] * n_steps
    return [1.0] * first_error + [0.0] * (n_steps - first_error)


class Method(Protocol):
    def __call__(self, records: list[Record], runner: RolloutRunner, seed: int, context: Any) -> list[Annotation]: ...


METHODS: Registry[Callable[..., list[Annotation]]] = Registry("annotation method")


def _load() -> None:
    from prmkit.annotate.methods import binary, judge, mc, omega  # noqa: F401  (they register themselves)


_load()
