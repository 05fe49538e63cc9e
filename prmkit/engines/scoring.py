"""The "score these step sequences" protocol, step-score aggregates, and the scorer back-ends by name.

A scorer takes (problem, steps) pairs and returns one score in [0, 1] per step. The `hf` back-end renders
each solution once through its PRM format and reads every step's score from that single forward pass;
`generative` asks an LLM to verify the steps. A recipe's `prm.engine` picks one through `make_scorer`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

from prmkit.registry import Registry

Progress = Callable[[int], None]


@dataclass
class ScoredSteps:
    """One solution's step scores. Steps past the length limit are not scored: `dropped_steps` says how many."""

    scores: list[float]
    dropped_steps: int = 0
    tokens: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ScorerStats:
    """Compute counters, so scoring methods are compared at equal cost."""

    sequences: int = 0
    scored_tokens: int = 0
    generated_tokens: int = 0
    forward_passes: int = 0
    wall_s: float = 0.0
    duplicate_sequences: int = 0
    """Sequences identical to another of the same call: given its scores, nothing computed (not in `sequences`)."""
    truncated_records: int = 0
    """Solutions cut at the length limit: their last steps have no score and can never be a predicted error."""
    unscored_steps: int = 0
    _warned: bool = field(default=False, repr=False)

    def as_dict(self) -> dict[str, float]:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}

    def count_truncation(self, encoded: list[Any], max_length: int | None) -> None:
        """Count the solutions the length limit cut; warn once per scorer, naming the limit and how to raise it."""
        cut = [e for e in encoded if e.dropped_steps]
        if not cut:
            return
        self.truncated_records += len(cut)
        self.unscored_steps += sum(e.dropped_steps for e in cut)
        if not self._warned:
            self._warned = True
            from prmkit.console import console

            console.print(
                f"warning: {len(cut)} solution(s) longer than the PRM's max_length {max_length} tokens: "
                f"their last {sum(e.dropped_steps for e in cut)} step(s) are not scored (counted in "
                "metrics as truncated_records); raise prm.max_length to score them",
                highlight=False,
                markup=False,
            )


def score_distinct(
    score: Callable[[list[tuple[str, list[str]]], Progress | None], list[ScoredSteps]],
    items: list[tuple[str, list[str]]],
    progress: Progress | None,
    stats: ScorerStats,
) -> list[ScoredSteps]:
    """`score` over the distinct items only; a repeat gets its first occurrence's scores and 0 computed tokens.

    Why: a search's candidates often coincide (a confident policy writes the same step in several samples: in the
    demo's beam search 627 of 3,664 scored candidates were distinct), and a PRM's scores of a sequence are a
    function of the sequence."""
    first: dict[tuple[str, tuple[str, ...]], int] = {}
    same = [first.setdefault((problem, tuple(steps)), i) for i, (problem, steps) in enumerate(items)]
    if len(first) == len(items):
        return score(items, progress)
    distinct = list(first.values())
    results = dict(zip(distinct, score([items[i] for i in distinct], progress)))
    stats.duplicate_sequences += len(items) - len(distinct)
    if progress is not None:
        progress(len(items) - len(distinct))
    out = []
    for i, j in enumerate(same):
        r = results[j]
        if i != j:
            r = ScoredSteps(list(r.scores), r.dropped_steps, 0, dict(r.extra))
            if r.dropped_steps:  # a repeat cut at the length limit is a truncated record like its first occurrence
                stats.truncated_records += 1
                stats.unscored_steps += r.dropped_steps
        out.append(r)
    return out


@runtime_checkable
class Scorer(Protocol):
    stats: ScorerStats

    def score(self, items: list[tuple[str, list[str]]], progress: Progress | None = None) -> list[ScoredSteps]:
        """Step scores for each (problem, steps), in input order; `progress(k)` as items finish."""

    def close(self) -> None: ...


AGGREGATES: Registry[Callable[[list[float]], float]] = Registry("step-score aggregate")
AGGREGATES.register("min")(min)
AGGREGATES.register("last")(lambda s: s[-1])
AGGREGATES.register("prod")(math.prod)
AGGREGATES.register("mean")(lambda s: sum(s) / len(s))


def aggregate(scores: list[float], names: list[str] | None = None) -> dict[str, float | None]:
    """Solution-level scores from step scores (None for a solution with no scored step)."""
    names = names or AGGREGATES.names()
    return {n: (AGGREGATES.get(n)(list(scores)) if scores else None) for n in names}


@dataclass(frozen=True)
class ScorerEngine:
    """A scorer back-end: its factory, and whether it is an LLM verifier (it generates critiques and reads
    no PRM format) rather than a discriminative PRM read in one forward pass."""

    build: Callable[..., Scorer]
    generates: bool = False


SCORERS: Registry[ScorerEngine] = Registry("scorer engine")


def register_scorer(name: str, generates: bool = False) -> Callable[[Callable[..., Scorer]], Callable[..., Scorer]]:
    """Register a scorer factory under `name` (a plug-in scorer registers itself the same way)."""

    def deco(build: Callable[..., Scorer]) -> Callable[..., Scorer]:
        SCORERS.register(name)(ScorerEngine(build, generates))
        return build

    return deco


@register_scorer("hf")
def _hf(**kwargs: Any) -> Scorer:
    from prmkit.engines.hf_scorer import HFScorer

    return HFScorer(**kwargs)


@register_scorer("generative", generates=True)
def _generative(**kwargs: Any) -> Scorer:
    from prmkit.engines.generative import GenerativeScorer

    return GenerativeScorer(**kwargs)


@register_scorer("vllm")
def _vllm(**kwargs: Any) -> Scorer:
    from prmkit.engines.vllm_scorer import make_vllm_scorer

    return make_vllm_scorer(**kwargs)


def make_scorer(name: str, **kwargs: Any) -> Scorer:
    """Build the scorer back-end `name`, e.g. make_scorer("hf", model="path", format="auto")."""
    return SCORERS.get(name).build(**kwargs)
