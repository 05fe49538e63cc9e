"""Methods over whole sampled solutions: best_of_n (PRM aggregate), weighted_majority (PRM-weighted vote) and
majority (plain vote, the no-PRM baseline).

All three read one draw of the largest budget per problem; budget N uses its first N samples (the hf sampler
gives sample j the same random stream whatever n is, so these are exactly an N-sample draw) and is charged
only the tokens those N samples cost.
"""

from __future__ import annotations

from prmkit.engines.base import SamplingParams, derive_seed, keyed_seeds
from prmkit.search.methods import Outcome, SearchContext, choose, register_method, value_of
from prmkit.search.recipe import MethodSpec
from prmkit.search.tree import Node
from prmkit.steps import split_steps


def draw_solutions(ctx: SearchContext) -> tuple[list[list[Node]], list[list[int]]]:
    """`ctx.draw_size` whole solutions per problem (one sampler call) and their step scores (one scorer call)."""
    s = ctx.sampling
    params = SamplingParams(
        n=ctx.draw_size,
        temperature=s.temperature,
        top_p=s.top_p,
        max_new_tokens=s.max_new_tokens,
        seed=derive_seed(ctx.seed, "draw"),
        prompt_seeds=keyed_seeds(derive_seed(ctx.seed, "draw"), [p.id for p in ctx.problems]),
    )
    outputs = ctx.sampler.generate(ctx.prompts, params)
    nodes: list[list[Node]] = []
    for p, completions in enumerate(outputs):
        row = []
        for c in completions:
            steps = split_steps(c.text, ctx.step_style, ctx.step_tag)
            row.append(Node(p, steps, [], c.finish_reason, 0, c.num_tokens))
        nodes.append(row)
    flat = [n for row in nodes for n in row if n.steps]
    scored = {id(n): 0 for row in nodes for n in row}
    if flat:
        results = ctx.scorer.score([(ctx.problems[n.problem].problem, n.steps) for n in flat])
        for node, result in zip(flat, results):
            node.scores = [float(x) for x in result.scores]
            scored[id(node)] = result.tokens
    return nodes, [[scored[id(n)] for n in row] for row in nodes]


def _from_draw(ctx: SearchContext, budget: int, spec: MethodSpec, select: str, use_prm: bool) -> list[Outcome]:
    draw = ctx.draw()
    out = []
    for nodes, scored in zip(draw.nodes, draw.scored_tokens):
        pool = [_valued(n, spec.aggregate if use_prm else None) for n in nodes[:budget]]
        chosen, answer = choose(pool, select)
        out.append(
            Outcome(
                chosen,
                answer,
                pool,
                generated_tokens=sum(n.tokens for n in pool),
                scored_tokens=sum(scored[:budget]) if use_prm else 0,
                wall_s=draw.wall_s / max(len(ctx.problems), 1) * budget / ctx.draw_size,
            )
        )
    return out


def _valued(node: Node, aggregate: str | None) -> Node:
    """A copy carrying the value this method ranks by (a PRM aggregate, or 1 for a plain vote)."""
    copy = Node(node.problem, node.steps, node.scores, node.finish, node.group, node.tokens)
    copy.value = value_of(node, aggregate) if aggregate else 1.0
    return copy


@register_method("best_of_n", whole_solutions=True)
def best_of_n(ctx: SearchContext, budget: int, spec: MethodSpec) -> list[Outcome]:
    """N whole solutions; the answer of the one with the best PRM aggregate (`aggregate`)."""
    return _from_draw(ctx, budget, spec, "best", use_prm=True)


@register_method("weighted_majority", whole_solutions=True)
def weighted_majority(ctx: SearchContext, budget: int, spec: MethodSpec) -> list[Outcome]:
    """N whole solutions; the answer whose solutions' PRM aggregates (`aggregate`) sum highest."""
    return _from_draw(ctx, budget, spec, "weighted_majority", use_prm=True)


@register_method("majority", whole_solutions=True)
def majority(ctx: SearchContext, budget: int, spec: MethodSpec) -> list[Outcome]:
    """N whole solutions; the most frequent answer. No PRM: the baseline the others must beat."""
    return _from_draw(ctx, budget, spec, "weighted_majority", use_prm=False)
