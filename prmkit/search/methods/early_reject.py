"""Early rejection (partial reward modelling) on top of beam search or best-of-N.

Every step is first generated for only `partial_tokens` tokens; the PRM scores those partial prefixes and the
candidates clearly behind (outside the best `keep_fraction`, and further than `margin` below the best) stop
there, before spending the rest of the step. On `base: beam` the survivors then compete in the usual top-N/M
selection; on `base: best_of_n` the N samples grow step by step with no selection, so rejection is the only
pruning and the answer is chosen among the finished samples.
"""

from __future__ import annotations

from prmkit.engines.base import derive_seed
from prmkit.search.expand import EarlyReject
from prmkit.search.methods import Outcome, SearchContext, choose, register_method
from prmkit.search.methods.beam import beam_search
from prmkit.search.recipe import MethodSpec
from prmkit.search.tree import Node


@register_method("early_reject", uses_beam_width=lambda spec: spec.base == "beam")
def early_reject(ctx: SearchContext, budget: int, spec: MethodSpec) -> list[Outcome]:
    """Beam search or step-wise best-of-N whose candidates are scored, and pruned, part-way through each step."""
    policy, prm, ledger = ctx.tools(spec.aggregate)
    expander = EarlyReject(policy, prm, spec)
    if spec.base == "beam":
        keep = budget // spec.width(budget)
        floor = spec.min_keep or 2 * keep  # the step's selection still chooses among twice what it keeps
        return beam_search(ctx, budget, spec, expander, ledger, "early_reject/beam", floor=floor)
    floor = spec.min_keep or 1
    open_nodes = [Node(p) for p in range(len(ctx.problems))]
    finished: list[list[Node]] = [[] for _ in ctx.problems]
    for rnd in range(ctx.sampling.max_steps):
        if not open_nodes:
            break
        parents = [(node, budget if rnd == 0 else 1) for node in open_nodes]
        children = expander.expand(parents, derive_seed(ctx.seed, "early_reject/best_of_n", budget, rnd), floor)
        open_nodes = []
        for child in children:
            (open_nodes if child.open else finished[child.problem]).append(child)
    out = []
    for p, nodes in enumerate(finished):
        chosen, answer = choose(nodes, spec.select)
        out.append(
            Outcome(
                chosen,
                answer,
                nodes,
                ledger.generated[p],
                ledger.scored[p],
                details={"rejected": expander.rejected.get(p, 0)},
            )
        )
    return out
