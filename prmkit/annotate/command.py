"""`prmkit annotate RECIPE`: automatic step labels (mc, binary, omega, judge, consensus), resumable and audited.

Reads solutions (e.g. `prmkit sample`'s samples.jsonl, or any step-split layout with references), labels
their steps with the chosen method, and writes `labels.jsonl` (prmkit records with `labels`; soft MC
estimates in `meta.annotation.soft`), `rejected.jsonl` (consensus rejections), and `metrics.json` with
the compute spent (rollouts, generated tokens, wall time) and, where the truth is known, the label audit.
`omega` (OmegaPRM's tree search) labels whole problems: its records are the paths it explored (see
prmkit/annotate/methods/omega.py). `shard=i/n` labels one deterministic share of the problems (all of a
problem's solutions together); `merge_from=[dirs]` joins finished shard runs into output_dir, each record once.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from prmkit.annotate.methods import LABELLERS, LabelContext
from prmkit.annotate.recipe import RESUME_SAFE, AnnotateRecipe
from prmkit.annotate.results import audit_rows, labelled_record, summarize
from prmkit.annotate.rollouts import RolloutRunner
from prmkit.annotate.selection import (
    chunks_to_do,
    labeller,
    omega_bound,
    per_problem,
    reuse_solutions,
    select_solutions,
    task_for,
    worst_case_rollouts,
)
from prmkit.commands import Command, register, summary_of
from prmkit.console import progress_bar
from prmkit.data.plan import model_label, number, plan_data
from prmkit.data.shards import ResumableWriter, merge_shards
from prmkit.errors import RecipeError
from prmkit.manifest import RunManifest
from prmkit.records import Record


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
        if not labeller(recipe).per_problem:
            rows["right solutions as witnesses"] = reuse_solutions(recipe)[1]
    if recipe.judge is not None and labeller(recipe).judge:
        rows["judge"] = model_label(recipe.judge.model.model, recipe.judge.model.engine)
    rows["solutions"] = data.label
    rows["steps"] = recipe.steps.style + (f" (tag {recipe.steps.tag!r})" if recipe.steps.tag else "")
    if data.readable:
        records, counts = select_solutions(recipe)
        worst = sum(worst_case_rollouts(recipe.method.name, len(x.steps), r.k, recipe.method) for x in records)
        rows.update(
            {
                **counts,
                "solutions to label": f"{len(records):,}",
                "rollouts (worst case)": f"{worst:,}",
                "max generated tokens (upper bound)": f"{worst * r.max_new_tokens:,}",
            }
        )
        if labeller(recipe).per_problem:  # a per-problem budget (omega): bounded by its own options
            bound, shown = omega_bound(recipe, records)
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


def _engines(recipe: AnnotateRecipe, records: list[Record]) -> tuple[Any, Any, LabelContext]:
    """The policy's sampler (methods that roll out), the judge's (methods that ask one) and the labelling context."""
    sampler = recipe.policy.build_sampler(recipe.seed) if labeller(recipe).rollouts else None
    judge_sampler = None
    if recipe.judge is not None and labeller(recipe).judge:
        judge_sampler = recipe.judge.model.build_sampler(recipe.seed)
    context = LabelContext(
        judge=recipe.judge,
        judge_sampler=judge_sampler,
        consensus_base=recipe.method.consensus_base,
        omega=recipe.omega,
        max_rollouts_per_problem=recipe.max_rollouts_per_problem,
        task=task_for(recipe, records),
        label_type=recipe.method.label_type,
        method=recipe.method,
    )
    return sampler, judge_sampler, context


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
    todo = chunks_to_do(recipe, records, out_dir, done)
    t0 = time.perf_counter()
    sampler, judge_sampler, context = _engines(recipe, records) if todo else (None, None, None)
    reuse, reuse_why = reuse_solutions(recipe)
    runner = (
        RolloutRunner(
            sampler, recipe.prompt, recipe.rollout, recipe.steps.style, recipe.steps.tag, recipe.rollout.k, reuse
        )
        if sampler is not None
        else None
    )
    method = LABELLERS.get(recipe.method.name)
    resumed = len(done)
    with kept_writer, rejected_writer, progress_bar(f"annotating ({recipe.method.name})", len(records)) as advance:
        advance(len(records) - sum(len(c) for c in todo))
        for chunk in todo:
            annotations = method(chunk, runner, recipe.seed, context)
            pairs = annotations if per_problem(recipe) else zip(chunk, annotations)
            for record, ann in pairs:
                if record.id in done:
                    continue
                (kept_writer if ann.kept else rejected_writer).write(labelled_record(recipe, record, ann))
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
    if labeller(recipe).rollouts and not per_problem(recipe):
        metrics["solution_witnesses"] = reuse_why
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
    rows.update(audit_rows(metrics))
    rows["output"] = str(out_dir / "labels.jsonl")
    return rows


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
    rows.update(audit_rows(metrics))
    rows["output"] = str(out_dir / "labels.jsonl")
    return rows


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
