"""OmegaPRM's binary search for the first error: O(k log M) rollouts instead of O(k M).

A prefix is good when any of its k rollouts reaches the reference answer. For a solution whose final
answer is wrong, the empty prefix is taken as good and the whole solution as bad; bisection keeps that
invariant until the first bad prefix is pinned, whose last step is the first error. A solution with a
right final answer is labelled all good without rollouts (as OmegaPRM searches only wrong ones). All
records of a chunk bisect in lockstep, one batched engine call per round.
"""

from __future__ import annotations

import math

from prmkit.annotate.methods import Annotation, LabelContext, labels_from_first_error, register_labeller
from prmkit.annotate.rollouts import RolloutCost, RolloutRunner
from prmkit.records import Record


def _binary_worst_case(n_steps: int, k: int) -> int:
    """k rollouts per probe, ceil(log2 n) probes."""
    return k * max(1, math.ceil(math.log2(max(n_steps, 1))))


@register_labeller("binary", worst_case=_binary_worst_case, worst_case_rule="k x ceil(log2 steps)")
def binary_search(records: list[Record], runner: RolloutRunner, seed: int, context: LabelContext) -> list[Annotation]:
    lo = [0] * len(records)
    hi = [len(r.steps) for r in records]
    costs = [RolloutCost() for _ in records]
    probes: list[dict[int, float]] = [{} for _ in records]
    active = [i for i, r in enumerate(records) if not r.correct and len(r.steps) > 0]
    round_no = 0
    while True:
        todo = [i for i in active if hi[i] - lo[i] > 1]
        if not todo:
            break
        mids = {i: (lo[i] + hi[i]) // 2 for i in todo}
        results = runner.run([(records[i], mids[i]) for i in todo], seed * 7919 + round_no)
        round_no += 1
        for i, res in zip(todo, results):
            costs[i].add(res.cost)
            probes[i][mids[i]] = round(res.rate, 6)
            if res.correct > 0:
                lo[i] = mids[i]
            else:
                hi[i] = mids[i]
    out = []
    for i, record in enumerate(records):
        first = hi[i] - 1 if i in active else -1
        hard = labels_from_first_error(len(record.steps), first)
        out.append(
            Annotation(
                hard=hard,
                soft=None,
                first_error=first,
                cost=costs[i],
                details={"probes": {str(k): v for k, v in sorted(probes[i].items())}},
            )
        )
    return out
