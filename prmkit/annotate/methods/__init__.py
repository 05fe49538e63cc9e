"""Step-labelling methods, by name. Each labels a chunk of records in rounds of batched rollouts.

A method returns, per record, an `Annotation`: hard labels (and soft ones where it has them), the first
error it found, and the compute it spent. Records it rejects (consensus filtering) come back with
`kept=False`. Each is registered as a `Labeller` that carries what the stage needs to know about it (whole
problems or solutions, rollouts, a judge, soft labels, its worst-case rollouts): the stage reads those
attributes and never checks a method's name. A `per_problem` method (omega) returns (record, annotation)
pairs for the records it writes, which need not be its input solutions.
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
    def __call__(
        self, records: list[Record], runner: RolloutRunner, seed: int, context: LabelContext
    ) -> list[Annotation]: ...


@dataclass
class LabelContext:
    """What a labelling method may read besides its records and the rollout runner (one per run)."""

    judge: Any = None
    """The recipe's `judge:` section (judge, consensus)."""
    judge_sampler: Any = None
    """The judge model's sampler, built when the method needs it."""
    consensus_base: str = "mc"
    """consensus: the rollout method whose labels the judge must agree with."""
    omega: Any = None
    """omega's options (OmegaOptions recipe section)."""
    max_rollouts_per_problem: int | None = None
    task: Any = None
    """The embedded task with an exact checker, when the solutions come from one (for the audit)."""
    label_type: str = "hard"
    """method.label_type: hard labels need one successful rollout per prefix (early stopping may apply)."""
    method: Any = None
    """The recipe's `method:` section (the method's own options, e.g. binary's bisect_draws)."""


def per_prefix_rollouts(n_steps: int, k: int, method: Any = None) -> int:
    """k rollouts after every step but the last (whose prefix is the whole solution, graded as it stands)."""
    return k * max(n_steps - 1, 0)


@dataclass(frozen=True)
class Labeller:
    """A registered labelling method and what the annotate stage needs to know about it (no checks on names)."""

    label: Callable[..., list[Any]]
    per_problem: bool = False
    """Labels whole problems (omega): returns (record, annotation) pairs, need not be one per input solution."""
    rollouts: bool = True
    """Samples rollouts from the policy (a policy sampler is built; solutions need reference answers)."""
    judge: bool = False
    """Reads a judge model's verdicts (the recipe needs a `judge:` section)."""
    soft_labels: bool = False
    """Keeps Monte Carlo values as soft labels: the audit also scores them at 0.5 and the hard ones."""
    worst_case: Callable[..., int] = per_prefix_rollouts
    """Rollouts one solution of n steps may need at k per prefix, given the recipe's `method:` section (the rollout
    cap and the plan use it)."""
    worst_case_rule: str = "k x (steps - 1)"
    """The same in words, for plans made before the solutions exist."""

    def __call__(self, *args: Any) -> list[Any]:
        return self.label(*args)


LABELLERS: Registry[Labeller] = Registry("annotation method")


def register_labeller(name: str, **attributes: Any) -> Callable[[Callable[..., list[Any]]], Callable[..., list[Any]]]:
    """Register a labelling function under `name` with its `Labeller` attributes."""

    def deco(fn: Callable[..., list[Any]]) -> Callable[..., list[Any]]:
        LABELLERS.register(name)(Labeller(fn, **attributes))
        return fn

    return deco


def _load() -> None:
    from prmkit.annotate.methods import binary, judge, mc, omega  # noqa: F401  (they register themselves)


_load()
