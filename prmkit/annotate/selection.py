"""Which solutions an annotate run labels, in which units: selection (prefilter, rollout cap, shard), the
chunks that are its units of work and resumption, and the worst-case rollout bounds the plan shows."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

from prmkit.annotate.methods import LABELLERS, Labeller
from prmkit.annotate.recipe import AnnotateRecipe
from prmkit.data.shards import jsonl_lines, select_shard
from prmkit.errors import DataError
from prmkit.records import Record
from prmkit.sections import SamplingSpec


def worst_case_rollouts(method: str, n_steps: int, k: int, spec: Any = None) -> int:
    """Rollouts one solution of `n_steps` may need under `method` (its registered worst case; `spec`: the recipe's
    `method:` section, whose options may change it)."""
    return LABELLERS.get(method).worst_case(n_steps, k, spec)


def labeller(recipe: AnnotateRecipe) -> Labeller:
    return LABELLERS.get(recipe.method.name)


def select_solutions(recipe: AnnotateRecipe) -> tuple[list[Record], dict[str, int]]:
    d = recipe.solutions
    records = d.load("solutions to label", unique_ids=False)
    counts = {"solutions read": len(records)}
    for r in records:
        if not r.steps:
            raise DataError(f"{d.path}: record {r.id!r} has no steps to label")
        if r.reference is None and labeller(recipe).rollouts:
            raise DataError(f"{d.path}: record {r.id!r} has no reference answer; rollouts cannot be graded")
    if recipe.prefilter.enabled:
        by_problem: dict[str, list[Record]] = defaultdict(list)
        for r in records:
            by_problem[str(r.meta.get("problem_id", r.problem))].append(r)
        keep = {pid for pid, rs in by_problem.items() if 0 < sum(bool(r.correct) for r in rs) < len(rs)}
        before = len(records)
        records = [r for r in records if str(r.meta.get("problem_id", r.problem)) in keep]
        counts["dropped by prefilter"] = before - len(records)
    if recipe.max_rollouts_per_problem is not None:
        spent: dict[str, int] = defaultdict(int)
        kept = []
        for r in records:
            pid = str(r.meta.get("problem_id", r.problem))
            need = worst_case_rollouts(recipe.method.name, len(r.steps), recipe.rollout.k, recipe.method)
            if spent[pid] + need <= recipe.max_rollouts_per_problem:
                spent[pid] += need
                kept.append(r)
        counts["dropped by rollout cap"] = len(records) - len(kept)
        records = kept
    groups = problem_groups(records)  # whole problems: a problem's solutions share prefixes and their rollouts
    records = [r for group in groups.values() for r in group]
    for i, r in enumerate(records):
        r.meta["item"] = i  # the order an unsharded run writes, which a merge restores
    return [r for pid in select_shard(list(groups), recipe.shard) for r in groups[pid]], counts


def per_problem(recipe: AnnotateRecipe) -> bool:
    """Methods that label whole problems (omega) rather than each solution on its own."""
    return labeller(recipe).per_problem


def problem_groups(records: list[Record]) -> dict[str, list[Record]]:
    """Solutions grouped by problem (meta.problem_id, else the problem text), in order of first appearance."""
    groups: dict[str, list[Record]] = {}
    for r in records:
        groups.setdefault(str(r.meta.get("problem_id", r.problem)), []).append(r)
    return groups


def work_chunks(recipe: AnnotateRecipe, records: list[Record]) -> list[list[Record]]:
    """Units of work and of resumption: whole problems, until a chunk holds chunk_size solutions. A problem's
    solutions are labelled together because they share prefixes: a prefix is rolled out once for all of them
    (and its other solutions count as its rollouts, with reuse_solutions), so a record's labels and cost
    depend on its problem alone, not on how the run is chunked or sharded."""
    size = recipe.chunk_size
    chunks: list[list[Record]] = [[]]
    for group in problem_groups(records).values():
        if len(chunks[-1]) >= size:
            chunks.append([])
        chunks[-1].extend(group)
    return [c for c in chunks if c]


def chunks_to_do(recipe: AnnotateRecipe, records: list[Record], out_dir: Path, done: set[str]) -> list[list[Record]]:
    """The chunks a (resumed) run still has to label: any record not yet on disk; for per-problem methods any
    problem whose paths are not all written."""
    chunks = work_chunks(recipe, records)
    if per_problem(recipe):
        finished = problems_done(out_dir / "labels.jsonl")
        return [c for c in chunks if any(pid not in finished for pid in problem_groups(c))]
    return [c for c in chunks if any(r.id not in done for r in c)]


def problems_done(path: Path) -> set[str]:
    """Problems whose records (a per-problem method's paths) are all on disk: their count is the one written."""
    written: dict[str, int] = defaultdict(int)
    expected: dict[str, int] = {}
    if path.exists():
        for line in jsonl_lines(path.read_text(encoding="utf-8")):
            if not line.strip():
                continue
            ann = json.loads(line).get("meta", {}).get("annotation", {})
            if "problem_id" in ann and "paths" in ann:
                written[ann["problem_id"]] += 1
                expected[ann["problem_id"]] = ann["paths"]
    return {pid for pid, n in written.items() if n == expected[pid]}


def omega_bound(recipe: AnnotateRecipe, records: list[Record]) -> tuple[int, str]:
    """omega's rollout bound: per problem max_searches x k x ceil(log2 steps), or the rollout cap if lower."""
    from prmkit.annotate.methods.omega import probes_needed

    longest = max((len(x.steps) for x in records), default=2)
    per = recipe.omega.max_searches * recipe.rollout.k * probes_needed(max(longest, 2))
    if recipe.max_rollouts_per_problem is not None:
        per = min(per, recipe.max_rollouts_per_problem)
    problems = len(problem_groups(records))
    return per * problems, f"{per * problems:,} ({problems:,} problems x {per:,})"


def reuse_solutions(recipe: AnnotateRecipe) -> tuple[bool, str]:
    """Whether a problem's right solutions count as successful draws at the prefixes they pass through, and why.

    `auto`: when they are draws of the rollout policy, as the `prmkit sample` recipe beside the solutions file
    shows (its policy model, prompt, steps and sampling against this recipe's policy and rollout)."""
    setting = recipe.rollout.reuse_solutions
    if not labeller(recipe).rollouts or labeller(recipe).per_problem:
        return False, "off (the method draws its own rollouts)"
    if isinstance(setting, bool):
        return setting, f"{'on' if setting else 'off'} (rollout.reuse_solutions: {str(setting).lower()})"
    beside = Path(recipe.solutions.path).parent / "recipe.yaml"
    try:
        drawn = yaml.safe_load(beside.read_text(encoding="utf-8")) if beside.is_file() else None
    except (OSError, yaml.YAMLError):
        drawn = None
    if not isinstance(drawn, dict) or not isinstance(drawn.get("sampling"), dict) or "policy" not in drawn:
        return False, f"off (auto: no prmkit sample recipe at {beside})"
    differ = []
    model = (drawn.get("policy") or {}).get("model") if isinstance(drawn.get("policy"), dict) else None
    if model is None or not _same_model(str(model), recipe.policy.model):
        differ.append(f"policy.model {model!r}")
    for key in ("temperature", "top_p", "max_new_tokens", "stop"):
        theirs = drawn["sampling"].get(key, getattr(SamplingSpec(), key))
        if theirs != getattr(recipe.rollout, key):
            differ.append(f"sampling.{key} {theirs!r} (rollout.{key} {getattr(recipe.rollout, key)!r})")
    for section, mine in (("prompt", recipe.prompt), ("steps", recipe.steps)):
        theirs = {**type(mine)().model_dump(), **(drawn.get(section) or {})}
        if theirs != mine.model_dump():
            differ.append(f"{section} {theirs}")
    if differ:
        return False, f"off (auto: {beside} drew them with " + "; ".join(differ) + ")"
    return True, f"on (auto: {beside} drew them with this policy, prompt, steps and sampling)"


def _same_model(a: str, b: str) -> bool:
    pa, pb = Path(a), Path(b)
    if pa.exists() and pb.exists():
        return pa.resolve() == pb.resolve()
    return a == b


def task_for(recipe: AnnotateRecipe, records: list[Record]) -> Any:
    """The embedded world that checks new solutions: the recipe's `task:`, else the one the records name."""
    from prmkit.tasks import TASKS, get_task

    named = (r.meta.get("task") for r in records)
    name = recipe.task or next((t for t in named if isinstance(t, str) and t in TASKS), None)
    return get_task(name) if name else None
