"""OmegaPRM's tree search (Luo et al. 2024, "Improve Mathematical Reasoning in Language Models by Automated
Process Supervision"): binary searches for first errors, steered by a value over (state, rollout) pairs and
fed by the rollouts that earlier searches generated.

Per problem a state tree is kept. A node (state) is a step prefix with its Monte Carlo estimate MC(s) (the
fraction of its k rollouts that reach the reference answer) and its visit count N(s). A node is *good* when
MC(s) > 0 (some continuation of it reaches the answer); the root (the bare problem) is good by definition,
as in `binary`: a problem with a reference answer can be solved. The candidate pool holds (state, rollout)
pairs: wrong rollouts (final answer not the reference) of good states. Each iteration:

1. **select** the pair maximising Q(s, r) + U(s), with Q(s, r) = alpha^(1 - MC(s)) * beta^(len(r) / L) and
   U(s) = c_puct * sqrt(sum over the tree's nodes of N) / (1 + N(s)); ties go to the older candidate.
   N(s) += 1 for the selected state, and the pair leaves the pool;
2. **binary search** the first error of the path s + r: the prefix s + r[:m] is probed with k rollouts (a
   node already in the tree is reused, not rolled out again); a good probe moves right, a bad one left;
3. **rollout reuse**: every probed prefix becomes a node, and its wrong rollouts become new candidates
   when it is good.

The search of a problem ends when `omega.max_searches` binary searches are done, when the next one could
exceed `max_rollouts_per_problem` (its worst case, k * ceil(log2(len(r))) rollouts, is checked before it
starts), or when the pool is empty. Paper defaults: c_puct 0.125, alpha 0.5, beta 0.9, L 500 tokens, k 8,
100 searches. The root's rollouts are the input solutions of the problem (the `sample` stage's draws), so
MC(root) is their accuracy; `prefilter.enabled` drops problems whose solutions are all right or all wrong
(the paper's question filter).

Records written (one per root-to-leaf path explored):
- every binary-searched path s + r, a complete wrong solution, with the first error found. Hard labels:
  1 before the first error, 0 from it on. Soft labels: a step before the first error takes the MC of the
  shallowest good node on the path that contains it (the tightest estimate measured for it); the first
  error and what follows take 0 (the first bad probe measured 0). So hard = (soft > 0), as in `mc`;
- every correct input solution (a root rollout that reached the answer), all steps good (its full text,
  graded right, counts as a node of MC 1).
A path that is an input solution keeps that record's id and meta; a new path (from a reused rollout) gets
id `<problem id>/omega<j>`, the problem's fields and `meta.derived_from`. Where `task:` names an embedded
world, new paths get `meta.true_labels` from its exact checker, so the label audit covers them. The cost of
a search (its probes' rollouts and tokens) is booked on its path's record, so the records of a problem sum
to the problem's cost. `meta.annotation` also holds `paths` (records written for the problem, used to
resume), `path` (its index among them), `problem_item` (the input position of the problem's first solution:
a shard merge orders by it), `state` (steps of the path that the search started from) and `mc` (prefix
length -> MC of the tree's nodes on the path).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from prmkit.annotate.methods import Annotation, LabelContext, labels_from_first_error, register_labeller
from prmkit.annotate.rollouts import Rollout, RolloutCost, RolloutRunner
from prmkit.grading import extract_answer
from prmkit.records import Record

Prefix = tuple[str, ...]
SampleFn = Callable[[Prefix], list[Rollout]]


@dataclass(frozen=True)
class OmegaOptions:
    """The search's knobs (the recipe's `omega:` section, plus k and the rollout cap)."""

    k: int = 8
    c_puct: float = 0.125
    alpha: float = 0.5
    beta: float = 0.9
    length_penalty: float = 500.0
    """L, in the policy's tokens (already multiplied by the recipe's length_scale)."""
    max_searches: int = 100
    max_rollouts: int | None = None


def q_value(mc: float, length: float, alpha: float, beta: float, length_penalty: float) -> float:
    """Q(s, r) = alpha^(1 - MC(s)) * beta^(len(r) / L): states near 50/50 and short rollouts first."""
    return alpha ** (1.0 - mc) * beta ** (length / length_penalty)


def u_value(c_puct: float, total_visits: int, visits: int) -> float:
    """U(s) = c_puct * sqrt(sum N) / (1 + N(s)): exploration bonus for states seldom selected."""
    return c_puct * math.sqrt(total_visits) / (1 + visits)


def probes_needed(n_steps: int) -> int:
    """Worst-case probes of a bisection over a rollout of n steps (first bad prefix among 1..n, n known bad)."""
    return math.ceil(math.log2(n_steps)) if n_steps > 1 else 0


@dataclass
class Node:
    steps: Prefix
    mc: float
    root: bool = False
    visits: int = 0

    @property
    def good(self) -> bool:
        return self.root or self.mc > 0


@dataclass
class Candidate:
    state: Prefix
    rollout: Rollout
    order: int
    source: Record | None = None
    """The input solution this pair stands for (root candidates), else None."""

    @property
    def path(self) -> Prefix:
        return self.state + tuple(self.rollout.steps)


@dataclass
class Path:
    """One labelled root-to-leaf path of the tree."""

    steps: Prefix
    first_error: int
    state: int
    correct: bool
    source: Record | None
    cost: RolloutCost = field(default_factory=RolloutCost)
    searched: bool = True


class ProblemTree:
    """The state tree and candidate pool of one problem; `search()` runs OmegaPRM on it as a generator.

    `search()` yields a step prefix to probe and expects its k rollouts sent back, so a driver can batch
    the probes of many problems into one engine call (see `omega`) or answer them from a function
    (`drive`, in tests)."""

    def __init__(self, roots: list[tuple[Record, int]], options: OmegaOptions) -> None:
        """`roots`: the problem's input solutions (its root rollouts), each with its length in tokens."""
        self.options = options
        self.nodes: dict[Prefix, Node] = {}
        self.pool: list[Candidate] = []
        self.paths: list[Path] = []
        self.rollouts = 0
        self._order = 0
        self._seen: set[Prefix] = set()
        mc = sum(bool(r.correct) for r, _ in roots) / len(roots) if roots else 0.0
        self.nodes[()] = Node((), mc, root=True)
        for record, tokens in roots:
            if record.correct:
                self.paths.append(Path(tuple(record.steps), -1, 0, True, record, searched=False))
                self._seen.add(tuple(record.steps))
            else:
                self._add_candidate((), Rollout(list(record.steps), False, tokens), record)

    # --------------------------------------------------------------------------- pool and selection

    def _add_candidate(self, state: Prefix, rollout: Rollout, source: Record | None = None) -> None:
        cand = Candidate(state, rollout, self._order, source)
        if rollout.correct or not rollout.steps or cand.path in self._seen:
            return
        self._seen.add(cand.path)
        self._order += 1
        self.pool.append(cand)

    def score(self, cand: Candidate, total_visits: int) -> float:
        o = self.options
        node = self.nodes[cand.state]
        return q_value(node.mc, cand.rollout.tokens, o.alpha, o.beta, o.length_penalty) + u_value(
            o.c_puct, total_visits, node.visits
        )

    def select(self) -> Candidate | None:
        """The candidate with the largest Q + U (the oldest among equals), or None when the pool is empty."""
        if not self.pool:
            return None
        total = sum(n.visits for n in self.nodes.values())
        return max(self.pool, key=lambda c: (self.score(c, total), -c.order))

    # --------------------------------------------------------------------------- the search

    def _add_node(self, prefix: Prefix, rollouts: list[Rollout]) -> Node:
        node = Node(prefix, sum(r.correct for r in rollouts) / len(rollouts) if rollouts else 0.0)
        self.nodes[prefix] = node
        if node.good:
            for r in rollouts:
                self._add_candidate(prefix, r)
        return node

    def search(self) -> Generator[Prefix, list[Rollout], None]:
        o = self.options
        searches = 0
        while searches < o.max_searches:
            cand = self.select()
            if cand is None:
                break
            n = len(cand.rollout.steps)
            if o.max_rollouts is not None and self.rollouts + o.k * probes_needed(n) > o.max_rollouts:
                break
            self.pool.remove(cand)
            searches += 1
            self.nodes[cand.state].visits += 1
            steps, cost = cand.path, RolloutCost()
            lo, hi = 0, n  # cand.state + r[:lo] is good, cand.state + r[:hi] (the whole wrong path) is bad
            while hi - lo > 1:
                mid = (lo + hi) // 2
                prefix = steps[: len(cand.state) + mid]
                node = self.nodes.get(prefix)
                if node is None:
                    rollouts = yield prefix
                    self.rollouts += len(rollouts)
                    cost.add(RolloutCost(len(rollouts), sum(r.tokens for r in rollouts)))
                    node = self._add_node(prefix, rollouts)
                if node.good:
                    lo = mid
                else:
                    hi = mid
            self.paths.append(Path(steps, len(cand.state) + hi - 1, len(cand.state), False, cand.source, cost))

    # --------------------------------------------------------------------------- labels

    def labels(self, path: Path) -> tuple[list[float], list[float]]:
        """(hard, soft) labels of a path; see the module docstring for the soft rule."""
        n = len(path.steps)
        fe = path.first_error if path.first_error >= 0 else n
        hard = labels_from_first_error(n, path.first_error)
        measured = {
            j: node.mc for j in range(1, fe + 1) if (node := self.nodes.get(path.steps[:j])) is not None and node.good
        }
        if path.correct:
            measured[n] = 1.0
        soft, nearest = [0.0] * n, None
        for j in range(fe, 0, -1):  # step j-1 takes the shallowest good node at or after it
            nearest = measured.get(j, nearest)
            soft[j - 1] = round(nearest, 6) if nearest is not None else 1.0
        return hard, soft

    def path_mc(self, path: Path) -> dict[str, float]:
        return {
            str(j): round(node.mc, 6)
            for j in range(1, len(path.steps) + 1)
            if (node := self.nodes.get(path.steps[:j])) is not None
        }


def drive(tree: ProblemTree, sample: SampleFn) -> ProblemTree:
    """Run one tree's search to the end, answering each probe with `sample(prefix)`."""
    gen = tree.search()
    prefix = _advance(gen)
    while prefix is not None:
        prefix = _advance(gen, sample(prefix))
    return tree


def _advance(gen: Generator[Prefix, list[Rollout], None], rollouts: list[Rollout] | None = None) -> Prefix | None:
    """The search's next probe (after answering the last one with `rollouts`), or None once it is over."""
    try:
        return next(gen) if rollouts is None else gen.send(rollouts)
    except StopIteration:
        return None


def _tokens(record: Record, tokenizer: Any) -> int:
    """Length of an input solution in tokens: what `sample` recorded, else the tokenizer's count, else chars."""
    given = record.meta.get("generated_tokens")
    if isinstance(given, int):
        return given
    text = "\n".join(record.steps)
    if tokenizer is not None:
        return len(tokenizer(text)["input_ids"])
    return len(text)


def options_from(context: LabelContext, k: int) -> OmegaOptions:
    spec = context.omega
    return OmegaOptions(
        k=k,
        c_puct=spec.c_puct,
        alpha=spec.alpha,
        beta=spec.beta,
        length_penalty=spec.length_penalty * spec.length_scale,
        max_searches=spec.max_searches,
        max_rollouts=context.max_rollouts_per_problem,
    )


def problem_key(record: Record) -> str:
    return str(record.meta.get("problem_id", record.problem))


# Its budget is per problem and enforced by the search itself, so no per-solution worst case.
@register_labeller(
    "omega",
    per_problem=True,
    soft_labels=True,
    worst_case=lambda n_steps, k, method=None: 0,
    worst_case_rule="the per-problem budget",
)
def omega(
    records: list[Record], runner: RolloutRunner, seed: int, context: LabelContext
) -> list[tuple[Record, Annotation]]:
    """Label the problems of `records` (whole problems: all their solutions are in the chunk) by tree search."""
    groups: dict[str, list[Record]] = {}
    for r in records:
        groups.setdefault(problem_key(r), []).append(r)
    tokenizer = getattr(runner.sampler, "tokenizer", None)
    options = options_from(context, runner.k)
    trees = {pid: ProblemTree([(r, _tokens(r, tokenizer)) for r in rs], options) for pid, rs in groups.items()}
    gens = {pid: tree.search() for pid, tree in trees.items()}
    pending: dict[str, Prefix] = {}
    for pid, gen in gens.items():
        if (first := _advance(gen)) is not None:
            pending[pid] = first
    round_no = 0
    while pending:
        ids = list(pending)
        results = runner.sample([(groups[pid][0], list(pending[pid])) for pid in ids], seed * 7919 + round_no)
        round_no += 1
        for pid, rollouts in zip(ids, results):
            if (probe := _advance(gens[pid], rollouts)) is None:
                del pending[pid]
            else:
                pending[pid] = probe
    task = getattr(context, "task", None)
    out = []
    for pid, tree in trees.items():
        first_item = min((r.meta["item"] for r in groups[pid] if isinstance(r.meta.get("item"), int)), default=None)
        for j, path in enumerate(tree.paths):
            record = _path_record(groups[pid][0], pid, j, path, task)
            hard, soft = tree.labels(path)
            out.append(
                (
                    record,
                    Annotation(
                        hard=hard,
                        soft=soft,
                        first_error=path.first_error,
                        cost=path.cost,
                        details={
                            "problem_id": pid,
                            "problem_item": first_item,
                            "path": j,
                            "paths": len(tree.paths),
                            "searched": path.searched,
                            "state": path.state,
                            "mc": tree.path_mc(path),
                        },
                    ),
                )
            )
    return out


def _path_record(first: Record, pid: str, j: int, path: Path, task: Any) -> Record:
    if path.source is not None:
        return Record.from_dict(path.source.to_dict())
    steps = list(path.steps)
    meta: dict[str, Any] = {"problem_id": pid, "derived_from": first.id}
    for key in ("task", "difficulty"):
        if key in first.meta:
            meta[key] = first.meta[key]
    if task is not None:
        check = task.check(task.parse_problem(first.problem, pid), steps)
        meta["true_first_error"] = check.first_error
        meta["true_labels"] = list(check.labels)
    return Record(
        id=f"{pid}/omega{j}",
        problem=first.problem,
        steps=steps,
        answer=extract_answer("\n".join(steps)),
        reference=first.reference,
        correct=path.correct,
        meta=meta,
    )
