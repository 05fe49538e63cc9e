"""Diverse verifier tree search (DVTS): N/M independent subtrees, each searched greedily by the PRM.

Budget N, width M: each subtree samples M first steps and keeps the PRM's favourite; every round each open
subtree expands its one candidate M times and keeps the best child. A subtree ends when its best child is
finished (final answer, EOS, runaway step, `max_steps`). Independent subtrees keep the candidates diverse,
where beam search at large N tends to collapse onto a few prefixes.
"""

from __future__ import annotations

from prmkit.engines.base import derive_seed
from prmkit.search.expand import Expander
from prmkit.search.methods import Outcome, SearchContext, choose, register_method
from prmkit.search.recipe import MethodSpec
from prmkit.search.tree import Node, ranked


@register_method("dvts", uses_beam_width=lambda spec: True)
def dvts(ctx: SearchContext, budget: int, spec: MethodSpec) -> list[Outcome]:
    """N/M subtrees, each keeping its best of M expansions per round (`beam_width`, `aggregate`, `select`)."""
    policy, prm, ledger = ctx.tools(spec.aggregate)
    expander = Expander(policy, prm)
    width = spec.width(budget)
    subtrees = budget // width
    frontier = [Node(p, group=g) for p in range(len(ctx.problems)) for g in range(subtrees)]
    finished: list[list[Node]] = [[] for _ in ctx.problems]
    for rnd in range(ctx.sampling.max_steps):
        if not frontier:
            break
        children = expander.expand(
            [(node, width) for node in frontier], derive_seed(ctx.seed, "dvts", budget, rnd), floor=1
        )
        best: dict[tuple[int, int], Node] = {}
        for child in ranked(children):
            best.setdefault((child.problem, child.group), child)
        frontier = []
        for node in frontier_order(best):
            (frontier if node.open else finished[node.problem]).append(node)
    out = []
    for p, nodes in enumerate(finished):
        chosen, answer = choose(nodes, spec.select)
        out.append(
            Outcome(chosen, answer, nodes, ledger.generated[p], ledger.scored[p], details={"subtrees": subtrees})
        )
    return out


def frontier_order(best: dict[tuple[int, int], Node]) -> list[Node]:
    """Subtrees in (problem, subtree) order, so the next round's sampler call is laid out the same every run."""
    return [best[key] for key in sorted(best)]
