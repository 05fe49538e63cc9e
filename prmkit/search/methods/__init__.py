"""Search methods by name. Each answers every problem of a chunk at one budget N and says what it spent.

A method is `method(ctx, budget, spec) -> [Outcome per problem]`. `SearchContext` holds what the methods of
one chunk share: the problems and their prompts, the sampler and the scorer, the chunk's seed, and the one
large draw of whole solutions that best_of_n, weighted_majority and majority subsample for every N.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prmkit.engines.base import Sampler
from prmkit.engines.scoring import AGGREGATES, Scorer
from prmkit.grading.voting import group_answers
from prmkit.records import Record
from prmkit.registry import Registry
from prmkit.search.recipe import MethodSpec, SearchSampling
from prmkit.search.tree import UNSCORED, Boundary, CandidateScorer, Ledger, Node, StepPolicy, ranked


@dataclass
class Outcome:
    """One problem's result: the chosen candidate (None when none finished), its answer, and the compute spent."""

    chosen: Node | None
    answer: str | None
    candidates: list[Node]
    generated_tokens: int
    scored_tokens: int
    wall_s: float | None = None
    """Set by methods that share work across budgets; otherwise the chunk's time split over its problems."""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Draw:
    """Whole solutions sampled once per problem (the largest budget), with their PRM scores and costs."""

    nodes: list[list[Node]]
    scored_tokens: list[list[int]]
    wall_s: float


@dataclass
class SearchContext:
    problems: list[Record]
    prompts: list[str]
    sampler: Sampler
    scorer: Scorer
    sampling: SearchSampling
    boundary: Boundary
    step_style: str
    step_tag: str | None
    seed: int
    draw_size: int
    _draw: Draw | None = None

    def tools(self, aggregate: str) -> tuple[StepPolicy, CandidateScorer, Ledger]:
        """A policy and a scorer that charge a fresh ledger: each (method, budget) is accounted on its own."""
        ledger = Ledger.for_problems(len(self.problems))
        s = self.sampling
        policy = StepPolicy(
            self.sampler,
            self.prompts,
            self.boundary,
            self.step_style,
            self.step_tag,
            s.temperature,
            s.top_p,
            s.step_max_tokens,
            s.max_steps,
            ledger,
            [p.id for p in self.problems],
        )
        return policy, CandidateScorer(self.scorer, [p.problem for p in self.problems], aggregate, ledger), ledger

    def draw(self) -> Draw:
        """The chunk's one draw of `draw_size` whole solutions per problem, sampled and scored on first use."""
        if self._draw is None:
            from prmkit.search.methods.sampling import draw_solutions

            start = time.perf_counter()
            nodes, scored = draw_solutions(self)
            self._draw = Draw(nodes, scored, time.perf_counter() - start)
        return self._draw


def choose(candidates: list[Node], select: str = "best") -> tuple[Node | None, str | None]:
    """The final pick among finished candidates: the best-scored one (preferring those with an answer: a
    solution without one cannot be right), or the answer with the largest summed score (weighted majority)."""
    with_answer = [c for c in candidates if c.answer is not None]
    pool = with_answer or candidates
    if not pool:
        return None, None
    if select == "weighted_majority" and with_answer:
        weights = [max(c.value, 0.0) for c in with_answer]
        if sum(weights) <= 0:
            weights = [1.0] * len(with_answer)
        groups = group_answers([c.answer for c in with_answer], weights)
        from prmkit.grading import is_equivalent

        winner = groups[0][0]
        best = ranked([c for c in with_answer if c.answer == winner or is_equivalent(c.answer, winner)])[0]
        return best, best.answer
    best = ranked(pool)[0]
    return best, best.answer


def value_of(node: Node, aggregate: str) -> float:
    return float(AGGREGATES.get(aggregate)(node.scores)) if node.scores else UNSCORED


@dataclass(frozen=True)
class SearchMethod:
    """A registered search method and what the stage needs to know about it (no checks on its name)."""

    run: Callable[[SearchContext, int, MethodSpec], list[Outcome]]
    uses_beam_width: Callable[[MethodSpec], bool] = lambda spec: False
    """Whether the spec's beam_width shapes the search (budgets must then be multiples of it)."""
    whole_solutions: bool = False
    """Samples whole solutions (N x max_new_tokens per problem) rather than growing them step by step."""

    def __call__(self, ctx: SearchContext, budget: int, spec: MethodSpec) -> list[Outcome]:
        return self.run(ctx, budget, spec)


METHODS: Registry[SearchMethod] = Registry("search method")


def register_method(
    name: str, uses_beam_width: Callable[[MethodSpec], bool] = lambda spec: False, whole_solutions: bool = False
) -> Callable:
    """Register a search function under `name` with its `SearchMethod` attributes."""

    def deco(fn: Callable[[SearchContext, int, MethodSpec], list[Outcome]]) -> Callable:
        METHODS.register(name)(SearchMethod(fn, uses_beam_width, whole_solutions))
        return fn

    return deco


def _load() -> None:
    from prmkit.search.methods import beam, dvts, early_reject, sampling  # noqa: F401  (they register themselves)


_load()
