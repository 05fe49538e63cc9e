"""`prmkit annotate RECIPE`: automatic step labels (mc, binary, omega, judge, consensus), resumable and audited.

Reads solutions (e.g. `prmkit sample`'s samples.jsonl, or any step-split layout with references), labels
their steps with the chosen method, and writes `labels.jsonl` (prmkit records with `labels`; soft MC
estimates in `meta.annotation.soft`), `rejected.jsonl` (consensus rejections), and `metrics.json` with
the compute spent (rollouts, generated tokens, wall time) and, where the truth is known, the label audit.
`omega` (OmegaPRM's tree search) labels whole problems: its records are the paths it explored (see
prmkit/annotate/methods/omega.py). `shard=i/n` labels one deterministic share of the solutions (whole
problems for omega); `merge_from=[dirs]` joins finished shard runs into output_dir, each record once.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from prmkit.annotate.audit import audit
from prmkit.annotate.methods import LABELLERS, LabelContext, Labeller
from prmkit.annotate.recipe import (
    RESUME_SAFE,
    AnnotateRecipe,
)
from prmkit.annotate.rollouts import RolloutCost, RolloutRunner
from prmkit.commands import Command, register, summary_of
from prmkit.console import progress_bar
from prmkit.data.plan import model_label, number, plan_data
from prmkit.data.shards import ResumableWriter, jsonl_lines, merge_shards, read_records, select_shard
from prmkit.errors import DataError, RecipeError
from prmkit.manifest import RunManifest
from prmkit.records import Record


def worst_case_rollouts(method: str, n_steps: int, k: int) -> int:
    """Rollouts one solution of `n_steps` may need under `method` (its registered worst case)."""
    return LABELLERS.get(method).worst_case(n_steps, k)


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
            need = worst_case_rollouts(recipe.method.name, len(r.steps), recipe.rollout.k)
            if spent[pid] + need <= recipe.max_rollouts_per_problem:
                spent[pid] += need
                kept.append(r)
        counts["dropped by rollout cap"] = len(records) - len(kept)
        records = kept
    for i, r in enumerate(records):
        r.meta["item"] = i
    if per_problem(recipe):
        groups = problem_groups(records)
        return [r for pid in select_shard(list(groups), recipe.shard) for r in groups[pid]], counts
    return select_shard(records, recipe.shard), counts


def per_problem(recipe: AnnotateRecipe) -> bool:
    """Methods that label whole problems (omega) rather than each solution on its own."""
    return labeller(recipe).per_problem


def problem_groups(records: list[Record]) -> dict[str, list[Record]]:
    """Solutions grouped by problem (meta.problem_id, else the problem text), in order of first appearance."""
    groups: dict[str, list[Record]] = {}
    for r in records:
        groups.setdefault(str(r.meta.get("problem_id", r.problem)), []).append(r)
    return groups


def _chunks(recipe: AnnotateRecipe, records: list[Record]) -> list[list[Record]]:
    """Units of work and of resumption: chunk_size solutions; for per-problem methods whole problems."""
    size = recipe.chunk_size
    if not per_problem(recipe):
        return [records[k : k + size] for k in range(0, len(records), size)]
    chunks: list[list[Record]] = [[]]
    for group in problem_groups(records).values():
        if len(chunks[-1]) >= size:
            chunks.append([])
        chunks[-1].extend(group)
    return [c for c in chunks if c]


def _problems_done(path: Path) -> set[str]:
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


def _omega_bound(recipe: AnnotateRecipe, records: list[Record]) -> tuple[int, str]:
    """omega's rollout bound: per problem max_searches x k x ceil(log2 steps), or the rollout cap if lower."""
    from prmkit.annotate.methods.omega import probes_needed

    longest = max((len(x.steps) for x in records), default=2)
    per = recipe.omega.max_searches * recipe.rollout.k * probes_needed(max(longest, 2))
    if recipe.max_rollouts_per_problem is not None:
        per = min(per, recipe.max_rollouts_per_problem)
    problems = len(problem_groups(records))
    return per * problems, f"{per * problems:,} ({problems:,} problems x {per:,})"


def _plan(recipe: AnnotateRecipe) -> dict[str, Any]:
    """Models, solutions, rollouts (worst case) and the generated-token upper bound (rollouts x max_new_tokens)."""
    if recipe.merge_from:
        return {"merge": ", ".join(recipe.merge_from), "output": str(Path(recipe.output_dir) / "labels.jsonl")}
    data = plan_data(recipe.solutions, recipe.shard)
    r = recipe.rollout
    rows: dict[str, Any] = {"method": recipe.method.name}
    if labeller(recipe).rollouts:
        rows["policy"] = model_label(recipe.policy.model, recipe.policy.engine)
        rows["prompt"] = recipe.prompt.label()
    if recipe.judge is not None and labeller(recipe).judge:
        rows["judge"] = model_label(recipe.judge.model.model, recipe.judge.model.engine)
    rows["solutions"] = data.label
    rows["steps"] = recipe.steps.style + (f" (tag {recipe.steps.tag!r})" if recipe.steps.tag else "")
    if data.readable:
        records, counts = select_solutions(recipe)
        worst = sum(worst_case_rollouts(recipe.method.name, len(x.steps), r.k) for x in records)
        rows.update(
            {
                **counts,
                "solutions to label": f"{len(records):,}",
                "rollouts (worst case)": f"{worst:,}",
                "max generated tokens (upper bound)": f"{worst * r.max_new_tokens:,}",
            }
        )
        if labeller(recipe).per_problem:  # a per-problem budget (omega): bounded by its own options
            bound, shown = _omega_bound(recipe, records)
            rows["rollouts (worst case)"] = shown
            rows["max generated tokens (upper bound)"] = f"{bound * r.max_new_tokens:,}"
    else:
        rule = labeller(recipe).worst_case_rule
        rows.update(
            {
                "solutions to label": number(data.count),
                "rollouts (worst case)": f"{rule} per solution, k = {r.k} (counted when the solutions exist)",
                "max generated tokens (upper bound)": f"rollouts x max_new_tokens {r.max_new_tokens}",
            }
        )
    rows["output"] = str(Path(recipe.output_dir) / "labels.jsonl")
    return rows


def _labelled(recipe: AnnotateRecipe, record: Record, ann: Any) -> Record:
    out = Record.from_dict(record.to_dict())
    use_soft = recipe.method.label_type == "soft" and ann.soft is not None
    out.labels = ann.soft if use_soft else ann.hard
    out.meta["annotation"] = {
        "method": recipe.method.name,
        "first_error": ann.first_error,
        "hard": ann.hard,
        "soft": ann.soft,
        "rollouts": ann.cost.rollouts,
        "generated_tokens": ann.cost.generated_tokens,
        **ann.details,
    }
    return out


def run(recipe: AnnotateRecipe, recipe_path: str) -> dict[str, Any]:
    if recipe.merge_from:
        return merge(recipe, recipe_path)
    if labeller(recipe).judge and recipe.judge is None:
        raise RecipeError(f"method.name {recipe.method.name!r} needs a `judge:` section (the judge model)")
    out_dir = Path(recipe.output_dir)
    manifest = RunManifest(out_dir, "annotate", recipe, recipe_path, resume_safe=RESUME_SAFE)
    records, counts = select_solutions(recipe)
    kept_writer = ResumableWriter(out_dir / "labels.jsonl")
    rejected_writer = ResumableWriter(out_dir / "rejected.jsonl")
    done = kept_writer.done_ids | rejected_writer.done_ids
    chunks = list(enumerate(_chunks(recipe, records)))
    if per_problem(recipe):
        finished = _problems_done(out_dir / "labels.jsonl")
        todo = [(i, c) for i, c in chunks if any(pid not in finished for pid in problem_groups(c))]
    else:
        todo = [(i, c) for i, c in chunks if any(r.id not in done for r in c)]
    t0 = time.perf_counter()
    sampler = judge_sampler = None
    if todo and labeller(recipe).rollouts:
        sampler = recipe.policy.build_sampler(recipe.seed)
    if todo and recipe.judge is not None and labeller(recipe).judge:
        jm = recipe.judge.model
        judge_sampler = jm.build_sampler(recipe.seed)
    runner = (
        RolloutRunner(sampler, recipe.prompt, recipe.rollout, recipe.steps.style, recipe.steps.tag, recipe.rollout.k)
        if sampler is not None
        else None
    )
    context = LabelContext(
        judge=recipe.judge,
        judge_sampler=judge_sampler,
        consensus_base=recipe.method.consensus_base,
        omega=recipe.omega,
        max_rollouts_per_problem=recipe.max_rollouts_per_problem,
        task=_task(recipe, records),
    )
    method = LABELLERS.get(recipe.method.name)
    resumed = len(done)
    with kept_writer, rejected_writer, progress_bar(f"annotating ({recipe.method.name})", len(records)) as advance:
        advance(len(records) - sum(len(c) for _, c in todo))
        for _, chunk in todo:
            annotations = method(chunk, runner, recipe.seed, context)
            pairs = annotations if per_problem(recipe) else zip(chunk, annotations)
            for record, ann in pairs:
                if record.id in done:
                    continue
                (kept_writer if ann.kept else rejected_writer).write(_labelled(recipe, record, ann))
            advance(len(chunk))
        kept_writer.mark_complete(len(kept_writer.done_ids))
        rejected_writer.mark_complete(len(rejected_writer.done_ids))
    engine_stats = {}
    for name, s in (("policy", sampler), ("judge", judge_sampler)):
        if s is not None:
            engine_stats[name] = s.stats.as_dict()
            s.close()
    metrics = summarize(out_dir, recipe)
    metrics["counts"] = counts
    metrics["compute_this_run"] = {
        "wall_s": round(time.perf_counter() - t0, 3),
        "records_resumed": resumed,
        "engines": engine_stats,
    }
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    manifest.finish({"labelled": metrics["labelled"], "rejected": metrics["rejected"]})
    rows: dict[str, Any] = {
        "method": recipe.method.name,
        **counts,
        "labelled": metrics["labelled"],
        "rejected": metrics["rejected"],
        "rollouts": metrics["cost"]["rollouts"],
        "generated tokens / solution": metrics["cost"]["generated_tokens_per_solution"],
    }
    rows.update(_audit_rows(metrics))
    rows["output"] = str(out_dir / "labels.jsonl")
    return rows


def _task(recipe: AnnotateRecipe, records: list[Record]) -> Any:
    """The embedded world that checks new solutions: the recipe's `task:`, else the one the records name."""
    from prmkit.tasks import TASKS, get_task

    named = (r.meta.get("task") for r in records)
    name = recipe.task or next((t for t in named if isinstance(t, str) and t in TASKS), None)
    return get_task(name) if name else None


def merge(recipe: AnnotateRecipe, recipe_path: str) -> dict[str, Any]:
    """Join finished shard runs of this recipe (merge_from) into output_dir: each record exactly once, in the
    order an unsharded run writes them (input order; omega's paths after their problem's), then the metrics."""
    out_dir = Path(recipe.output_dir)
    manifest = RunManifest(out_dir, "annotate", recipe, recipe_path, resume_safe=RESUME_SAFE)

    def order(d: dict[str, Any]) -> tuple[int, int]:
        meta = d.get("meta", {})
        ann = meta.get("annotation", {})
        item = ann.get("problem_item", meta.get("item"))
        return (item if isinstance(item, int) else 1 << 62, ann.get("path", 0))

    counts = merge_shards(
        recipe.merge_from or [],
        out_dir,
        ["labels.jsonl", "rejected.jsonl"],
        recipe,
        resume_safe=RESUME_SAFE,
        order=order,
    )
    metrics = summarize(out_dir, recipe)
    metrics["merged_from"] = list(recipe.merge_from or [])
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    manifest.finish({"labelled": counts["labels.jsonl"], "rejected": counts["rejected.jsonl"]})
    rows: dict[str, Any] = {
        "merged shards": len(recipe.merge_from or []),
        "labelled": metrics["labelled"],
        "rejected": metrics["rejected"],
        "rollouts": metrics["cost"]["rollouts"],
    }
    rows.update(_audit_rows(metrics))
    rows["output"] = str(out_dir / "labels.jsonl")
    return rows


def _audit_rows(metrics: dict[str, Any]) -> dict[str, str]:
    rows = {}
    for key, value in (metrics.get("audit") or {}).items():
        if isinstance(value, dict):
            rows[f"audit {key}: step acc / first-error F1"] = (
                f"{_fmt(value['step_accuracy'])} / {_fmt(value['first_error_f1'])}"
            )
    return rows


def _fmt(value: float | None) -> str:
    """A metric for the summary table; None (an empty group, e.g. no correct solution) shows as n/a."""
    return "n/a" if value is None else f"{value:.3f}"


def summarize(out_dir: Path, recipe: AnnotateRecipe) -> dict[str, Any]:
    """Cost and audit over everything on disk (a resumed run reports the whole run, not only its tail)."""
    kept = read_records(out_dir / "labels.jsonl", missing_ok=True)
    rejected = read_records(out_dir / "rejected.jsonl", missing_ok=True)
    every = kept + rejected
    cost = RolloutCost()
    for r in every:
        cost.add(RolloutCost(r.meta["annotation"]["rollouts"], r.meta["annotation"]["generated_tokens"]))
    metrics: dict[str, Any] = {
        "method": recipe.method.name,
        "labelled": len(kept),
        "rejected": len(rejected),
        "cost": {
            "rollouts": cost.rollouts,
            "generated_tokens": cost.generated_tokens,
            "generated_tokens_per_solution": round(cost.generated_tokens / len(every), 2) if every else 0.0,
            "rollouts_per_solution": round(cost.rollouts / len(every), 2) if every else 0.0,
        },
    }
    audits: dict[str, Any] = {}
    kept_audit = audit([(r, r.labels) for r in kept if r.labels is not None])
    if kept_audit:
        audits["labels"] = kept_audit
    if labeller(recipe).soft_labels:
        soft = audit([(r, [1.0 if x >= 0.5 else 0.0 for x in r.meta["annotation"]["soft"]]) for r in kept])
        hard = audit([(r, r.meta["annotation"]["hard"]) for r in kept])
        if soft:
            audits[f"{recipe.method.name}_soft@0.5"] = soft
        if hard:
            audits[f"{recipe.method.name}_hard"] = hard
    if audits:
        metrics["audit"] = audits
    return metrics


register(
    Command(
        name="annotate",
        help=summary_of(__doc__),
        recipe=AnnotateRecipe,
        run=run,
        plan=_plan,
        shard_files=("labels.jsonl", "rejected.jsonl"),
    )
)
