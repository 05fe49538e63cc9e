"""Math-Shepherd Monte Carlo estimation: k rollouts after every step prefix.

Step i's soft label is the fraction of rollouts from the prefix ending at step i that reach the reference
answer; its hard label is 1 when any of them does (the Math-Shepherd rule). Cost: k (M - 1) rollouts for an
M-step solution (the full solution is graded as it stands), fewer for hard labels with early stopping (a prefix
stops at its first success; the soft estimate is then not kept, as it would rest on fewer than k rollouts).
"""

from __future__ import annotations

from prmkit.annotate.methods import Annotation, LabelContext, register_labeller
from prmkit.annotate.rollouts import RolloutCost, RolloutRunner
from prmkit.records import Record


@register_labeller("mc", soft_labels=True)
def monte_carlo(records: list[Record], runner: RolloutRunner, seed: int, context: LabelContext) -> list[Annotation]:
    requests = [(r, i + 1) for r in records for i in range(len(r.steps))]
    hard_only = context.label_type == "hard"
    results = runner.run(requests, seed, until_success=hard_only, pool=runner.pool(records))
    early = hard_only and len(runner.waves(True)) > 1
    out, k = [], 0
    for record in records:
        mine = results[k : k + len(record.steps)]
        k += len(record.steps)
        soft = None if early else [round(p.rate, 6) for p in mine]
        hard = [1.0 if p.correct > 0 else 0.0 for p in mine]
        cost = RolloutCost()
        for p in mine:
            cost.add(p.cost)
        first = next((i for i, h in enumerate(hard) if h < 0.5), -1)
        out.append(Annotation(hard=hard, soft=soft, first_error=first, cost=cost))
    return out
