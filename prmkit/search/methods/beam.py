"""Step-level beam search guided by the PRM (search-and-learn's definition, batched across problems).

Budget N, beam width M: the first round samples N first steps per problem; every round the PRM scores each
new prefix, the best N/M unfinished candidates are kept and each is expanded M times. A candidate ends at its
final answer, EOS, a runaway step or `max_steps`; the answer is chosen among the finished ones by the PRM
aggregate (or the PRM-weighted vote with `select: weighted_majority`).
"""

from __future__ import annotations

from prmkit.engines.base import derive_seed
from prmkit.search.expand import Expander
from prmkit.search.methods import Outcome, SearchContext, choose, register_method
from prmkit.search.recipe import MethodSpec
from prmkit.search.tree import Ledger, Node, ranked


def beam_search(
    ctx: SearchContext,
    budget: int,
    spec: MethodSpec,
    expander: Expander,
    ledger: Ledger,
    label: str,
    floor: int | None = None,
) -> list[Outcome]:
    """Beam search with any expander (plain, or early rejection keeping at least `floor`, default N/M)."""
    width = spec.width(budget)
    keep = budget // width
    frontier: list[list[Node]] = [[Node(p)] for p in range(len(ctx.problems))]
    finished: list[list[Node]] = [[] for _ in ctx.problems]
    for rnd in range(ctx.sampling.max_steps):
        parents = [(node, budget if rnd == 0 else width) for row in frontier for node in row]
        if not parents:
            break
        children = expander.expand(parents, derive_seed(ctx.seed, label, budget, rnd), floor=floor or keep)
        frontier = [[] for _ in ctx.problems]
        for child in children:
            (frontier[child.problem] if child.open else finished[child.problem]).append(child)
        frontier = [ranked(row)[:keep] for row in frontier]
    return _outcomes(ctx, finished, spec, ledger, expander)


def _outcomes(
    ctx: SearchContext, finished: list[list[Node]], spec: MethodSpec, ledger: Ledger, expander: Expander
) -> list[Outcome]:
    out = []
    for p, nodes in enumerate(finished):
        chosen, answer = choose(nodes, spec.select)
        details = {"rejected": expander.rejected.get(p, 0)} if expander.counts_rejections else {}
        out.append(Outcome(chosen, answer, nodes, ledger.generated[p], ledger.scored[p], details=details))
    return out


@register_method("beam", uses_beam_width=lambda spec: True)
def beam(ctx: SearchContext, budget: int, spec: MethodSpec) -> list[Outcome]:
    """Keep the best N/M candidates each round and expand each M times (`beam_width`, `aggregate`, `select`)."""
    policy, prm, ledger = ctx.tools(spec.aggregate)
    return beam_search(ctx, budget, spec, Expander(policy, prm), ledger, "beam")
