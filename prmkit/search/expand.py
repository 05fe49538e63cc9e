"""Growing candidates by one step: plainly, or with early rejection (partial reward modelling).

`Expander.expand([(parent, k), ...])` returns the scored children, parents in order and each parent's k
samples in order. `EarlyReject` first generates only `partial_tokens` of the step, scores those partial
prefixes, and lets only the candidates that are not clearly behind finish the step: the tokens the others
would have spent are never generated.
"""

from __future__ import annotations

from collections import defaultdict

from prmkit.engines.base import derive_seed
from prmkit.search.recipe import MethodSpec, survivors
from prmkit.search.tree import CandidateScorer, Node, StepPolicy, ranked


class Expander:
    """One step for every parent: one sampler call per distinct k (usually one), one scorer call."""

    counts_rejections = False

    def __init__(self, policy: StepPolicy, prm: CandidateScorer) -> None:
        self.policy = policy
        self.prm = prm
        self.rejected: dict[int, int] = defaultdict(int)
        """Candidates stopped before finishing a step, per problem (early rejection only)."""

    def _sample(self, parents: list[tuple[Node, int]], seed: int, max_tokens: int, partial: bool) -> list[Node]:
        children: list[list[Node]] = [[] for _ in parents]
        for k in sorted({k for _, k in parents}):
            idx = [i for i, (_, kk) in enumerate(parents) if kk == k]
            outputs = self.policy.sample([parents[i][0] for i in idx], k, derive_seed(seed, k), max_tokens)
            for i, completions in zip(idx, outputs):
                children[i] = [self.policy.grow(parents[i][0], c, partial=partial) for c in completions]
        return [child for row in children for child in row]

    def expand(self, parents: list[tuple[Node, int]], seed: int, floor: int) -> list[Node]:
        children = self._sample(parents, seed, self.policy.step_max_tokens, partial=False)
        self.prm.score(children)
        return children


class EarlyReject(Expander):
    """Score each step after its first `partial_tokens` tokens; only the leading candidates finish it.

    Per problem, the candidates kept are the best `keep_fraction` of the round's children by partial score (at
    least `floor`), plus any within `margin` of the best. A child that finished its step inside the first
    tokens has nothing left to save and is never rejected.
    """

    counts_rejections = True

    def __init__(self, policy: StepPolicy, prm: CandidateScorer, spec: MethodSpec) -> None:
        super().__init__(policy, prm)
        self.spec = spec

    def expand(self, parents: list[tuple[Node, int]], seed: int, floor: int) -> list[Node]:
        children = self._sample(parents, seed, self.spec.partial_tokens, partial=True)
        self.prm.score(children)
        by_problem: dict[int, list[Node]] = defaultdict(list)
        for child in children:
            by_problem[child.problem].append(child)
        dropped: set[int] = set()
        for problem, kids in by_problem.items():
            order = ranked(kids)
            keep = {id(n) for n in order[: survivors(self.spec, len(kids), floor)]}
            if self.spec.margin is not None and order:
                keep |= {id(n) for n in kids if n.value >= order[0].value - self.spec.margin}
            for n in kids:
                if n.partial and id(n) not in keep:
                    dropped.add(id(n))
                    self.rejected[problem] += 1
        alive = [n for n in children if id(n) not in dropped]
        unfinished = [n for n in alive if n.partial]
        rest = self.policy.step_max_tokens - self.spec.partial_tokens
        outputs = self.policy.sample(unfinished, 1, derive_seed(seed, "finish"), rest)
        finished = {id(n): self.policy.grow(n, out[0]) for n, out in zip(unfinished, outputs)}
        self.prm.score(list(finished.values()))
        return [finished.get(id(n), n) for n in alive]
