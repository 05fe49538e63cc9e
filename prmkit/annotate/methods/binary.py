"""OmegaPRM's binary search for the first error: O(k log M) rollouts instead of O(k M).

A prefix is good when one of its k draws reaches the reference answer (with early stopping, drawn in waves
until the first one does: the same verdict for fewer rollouts). For a solution whose final answer is wrong, the
empty prefix is taken as good and the whole solution as bad; bisection keeps that invariant until the first bad
prefix is pinned, whose last step is the first error (probing the midpoint; see SPLIT). A solution with a right
final answer is labelled all good without rollouts (as OmegaPRM searches only wrong ones).

Lazy confirmation (`method.bisect_draws`, default 2): while bisecting, a probe with no success in its first
`bisect_draws` draws is taken as bad, provisionally; only the first bad prefix the search settles on gets the
rest of its k draws. If one of them succeeds, that prefix is good after all and the search carries on to its
right, up to the next bad prefix it knows, with all k per probe from then on. So the label rests, as before, on
a good prefix with a success next to a bad one with k failures, while the bad prefixes the search only passes
through (most of binary's rollouts went to them) cost `bisect_draws` each. All records of a chunk bisect in
lockstep, one batched engine call per round and draw count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from prmkit.annotate.methods import Annotation, LabelContext, labels_from_first_error, register_labeller
from prmkit.annotate.rollouts import PrefixResult, RolloutCost, RolloutRunner
from prmkit.records import Record

SPLIT = 0.5
"""Where in the open interval (lo, hi) the next probe sits: the midpoint. Probing a third of the way in (where
prefixes are good more often, and a good prefix costs one wave with early stopping) spent 36-41% fewer generated
tokens than the midpoint with all k on benchmarks/annotate.py's simulated policy at equal F1, but on the quickstart
policy (k = 4, whose rollouts from a good prefix often all fail) it lost 6.5 first-error F1 points (0.720 against
0.785): more probes, each a chance to call a good prefix bad. So the midpoint stays."""


def probe(lo: int, hi: int) -> int:
    """The prefix length probed next between a good prefix `lo` and a bad one `hi` (hi - lo > 1)."""
    return lo + max(1, int((hi - lo) * SPLIT))


@cache
def probes_at_most(n: int) -> int:
    """Probes one interval of n candidate first errors needs at worst (the larger side left each time)."""
    if n <= 1:
        return 0
    cut = probe(0, n)
    return 1 + max(probes_at_most(cut), probes_at_most(n - cut))


@dataclass
class Bisection:
    """One solution's search: `lo` the longest prefix known good, `hi` the shortest known bad beyond it
    (`n`, the whole wrong solution, to begin with); bad prefixes are `confirmed` (k failures) or `provisional`."""

    n: int
    lo: int = 0
    hi: int = -1
    provisional: set[int] = field(default_factory=set)
    confirmed: set[int] = field(default_factory=set)
    exact: bool = False
    """Set when a provisional bad is overturned: every later probe takes all k (so the worst case stays near
    k log^2 M rollouts, not k M)."""

    def __post_init__(self) -> None:
        self.hi = self.n if self.hi < 0 else self.hi

    def next_probe(self, bisect_draws: int | None) -> tuple[int, int | None] | None:
        """(prefix length, draws: None for all k) to roll out next, or None when the first error is pinned."""
        if self.hi - self.lo > 1:
            return probe(self.lo, self.hi), None if self.exact else bisect_draws
        if self.hi in self.provisional:
            return self.hi, None  # the boundary the search settled on: confirm it with all k
        return None

    def update(self, length: int, all_k: bool, result: PrefixResult) -> None:
        if result.correct > 0:
            self.lo = length
            if length in self.provisional:
                self.provisional.discard(length)
                self.exact = True
            known_bad = [x for x in self.provisional | self.confirmed if x > length]
            self.hi = min(known_bad, default=self.n)
        else:
            self.hi = length
            (self.confirmed if all_k else self.provisional).add(length)
            if all_k:
                self.provisional.discard(length)

    @property
    def first_error(self) -> int:
        return self.hi - 1


@cache
def _worst(lo: int, rights: tuple[tuple[int, bool], ...], k: int, draws: int, exact: bool) -> int:
    """Most draws the search can still take from state (lo, known bads to the right with their provisional flag),
    every verdict chosen against us: `draws` per bisection probe (k once exact), the rest of k to confirm."""
    hi, provisional = rights[0]
    if hi - lo > 1:
        m, d = probe(lo, hi), k if exact else draws
        good = _worst(m, rights, k, draws, exact)
        bad = _worst(lo, ((m, d < k), *rights), k, draws, exact)
        return d + max(good, bad)
    if provisional:
        return k - draws + _worst(hi, rights[1:], k, draws, True)
    return 0


def _binary_worst_case(n_steps: int, k: int, method: Any = None) -> int:
    """Rollouts one solution may need: k per probe, at most probes_at_most(n) probes (ceil(log2 n)); with lazy
    confirmation, the search's worst case over every verdict (e.g. 72 against 32 for 12 steps at k = 8)."""
    draws = min(getattr(method, "bisect_draws", None) or k, k)
    if draws >= k:
        return k * max(1, probes_at_most(n_steps))
    return max(k, _worst(0, ((n_steps, False),), k, draws, False))


@register_labeller(
    "binary",
    worst_case=_binary_worst_case,
    worst_case_rule="k x ceil(log2 steps); with bisect_draws, at most about k x log2(steps)^2",
)
def binary_search(records: list[Record], runner: RolloutRunner, seed: int, context: LabelContext) -> list[Annotation]:
    method = context.method
    bisect_draws = getattr(method, "bisect_draws", None)
    if bisect_draws is not None and bisect_draws >= runner.k:
        bisect_draws = None
    searches = {i: Bisection(len(r.steps)) for i, r in enumerate(records) if not r.correct and len(r.steps) > 0}
    costs = [RolloutCost() for _ in records]
    probes: list[dict[int, float]] = [{} for _ in records]
    pool = runner.pool(records)  # a prefix probed by several solutions (or rounds) is rolled out once
    while True:
        asks: dict[int | None, list[tuple[int, int]]] = {}  # draws -> (record, prefix length)
        for i, search in searches.items():
            nxt = search.next_probe(bisect_draws)
            if nxt is not None:
                asks.setdefault(nxt[1], []).append((i, nxt[0]))
        if not asks:
            break
        for draws, items in asks.items():
            requests = [(records[i], length) for i, length in items]
            results = runner.run(requests, seed, until_success=True, pool=pool, draws=draws)
            for (i, length), res in zip(items, results):
                costs[i].add(res.cost)
                probes[i][length] = round(res.rate, 6)
                searches[i].update(length, draws is None, res)
    out = []
    for i, record in enumerate(records):
        first = searches[i].first_error if i in searches else -1
        out.append(
            Annotation(
                hard=labels_from_first_error(len(record.steps), first),
                soft=None,
                first_error=first,
                cost=costs[i],
                details={"probes": {str(k): v for k, v in sorted(probes[i].items())}},
            )
        )
    return out
