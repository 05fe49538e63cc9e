"""`prmkit score RECIPE`: per-step scores for solutions from a PRM, written beside the steps.

Reads records in any supported layout and writes `scored.jsonl`: each record with `scores` (one per scored
step) and `meta["aggregates"]` (min, last, prod, mean over the step scores). Records are scored in chunks and
appended as they finish, so a killed run started again scores only what is missing. `metrics.json` counts
scored tokens and wall time. `shard=i/n` scores one share of the records; `merge_from=[dirs]` joins finished
shard runs in data order (what `launcher: {name: ray}` does for you).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from prmkit.commands import Command, register, summary_of
from prmkit.data.shards import ResumableWriter, merge_shards
from prmkit.errors import RecipeError
from prmkit.manifest import RunManifest
from prmkit.models.loading import resolve_model
from prmkit.records import Record
from prmkit.score.recipe import RESUME_SAFE, ScoreRecipe, build_scorer
from prmkit.score.scoring import LazyScorer, load_data, merge_compute, read_scored, score_into


def summarize(records: Iterable[Record]) -> dict[str, Any]:
    """Counts, mean aggregates, and step accuracy at 0.5 where records carry labels."""
    records = list(records)
    out: dict[str, Any] = {
        "records": len(records),
        "steps_scored": sum(len(r.scores or []) for r in records),
        "steps_unscored": sum(r.meta.get("unscored_steps", 0) for r in records),
    }
    for name in ("min", "last", "prod", "mean"):
        vals = [r.meta["aggregates"][name] for r in records if r.meta.get("aggregates", {}).get(name) is not None]
        out[f"mean_{name}"] = sum(vals) / len(vals) if vals else None
    pairs = [(s, y) for r in records if r.labels and r.scores for s, y in zip(r.scores, r.labels)]
    out["step_accuracy@0.5"] = sum((s >= 0.5) == (y >= 0.5) for s, y in pairs) / len(pairs) if pairs else None
    return out


def run(recipe: ScoreRecipe, recipe_path: str) -> dict[str, Any]:
    if recipe.merge_from:
        return merge(recipe, recipe_path)
    out_dir = Path(recipe.output_dir)
    source = Path(recipe.data.path).expanduser()
    if source.exists() and (source.resolve() == out_dir.resolve() or out_dir.resolve() in source.resolve().parents):
        raise RecipeError(
            f"data.path {recipe.data.path!r} lies in this run's output_dir {recipe.output_dir!r}: "
            "score would read its own output; write the scores elsewhere"
        )
    records = load_data(recipe.data, recipe.shard)
    resolve_model(recipe.prm.model)  # a typo fails before the output folder is claimed by this recipe
    manifest = RunManifest(out_dir, "score", recipe, recipe_path, resume_safe=RESUME_SAFE)
    path = out_dir / "scored.jsonl"
    with ResumableWriter(path) as writer, LazyScorer(lambda: build_scorer(recipe.prm, recipe.seed)) as scorer:
        compute = score_into(records, writer, scorer, recipe.chunk_size)
    metrics = summarize(read_scored(path))
    metrics["compute"] = compute
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    manifest.finish({"records": metrics["records"], "steps_scored": metrics["steps_scored"]})
    return {
        "records": metrics["records"],
        "steps scored": metrics["steps_scored"],
        "steps unscored (length limit)": metrics["steps_unscored"],
        "mean min-score": metrics["mean_min"],
        "scored tokens (this run)": compute["scored_tokens_this_run"],
        "wall s (this run)": compute["wall_s_this_run"],
        "resumed records": compute["records_resumed"],
        "output": str(path),
    }


def merge(recipe: ScoreRecipe, recipe_path: str) -> dict[str, Any]:
    """Join finished shard runs of this recipe (merge_from) into output_dir: each record once, in data order
    (the order an unsharded run writes), and their compute counters added up."""
    out_dir = Path(recipe.output_dir)
    place = {r.id: k for k, r in enumerate(recipe.data.load())}
    manifest = RunManifest(out_dir, "score", recipe, recipe_path, resume_safe=RESUME_SAFE)
    folders = recipe.merge_from or []
    counts = merge_shards(
        folders, out_dir, ["scored.jsonl"], recipe, resume_safe=RESUME_SAFE, order=lambda d: place.get(d["id"], 1 << 62)
    )
    parts = [json.loads((Path(f) / "metrics.json").read_text(encoding="utf-8"))["compute"] for f in folders]
    metrics = summarize(read_scored(out_dir / "scored.jsonl"))
    metrics["compute"] = merge_compute(parts)
    metrics["merged_from"] = list(folders)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    manifest.finish({"records": counts["scored.jsonl"], "steps_scored": metrics["steps_scored"]})
    return {
        "merged shards": len(folders),
        "records": metrics["records"],
        "steps scored": metrics["steps_scored"],
        "mean min-score": metrics["mean_min"],
        "output": str(out_dir / "scored.jsonl"),
    }


def _plan(recipe: ScoreRecipe) -> dict[str, Any]:
    from prmkit.data.plan import number, plan_data

    if recipe.merge_from:
        return {"merge": ", ".join(recipe.merge_from), "output": str(Path(recipe.output_dir) / "scored.jsonl")}

    data = plan_data(recipe.data, recipe.shard)
    rows: dict[str, Any] = {"prm": recipe.prm.label(), "data": data.label}
    if data.readable:
        records = load_data(recipe.data, recipe.shard)
        count: int | None = len(records)
        rows.update({"records": f"{len(records):,}", "steps": f"{sum(len(r.steps) for r in records):,}"})
    else:
        count = data.count
        rows["records"] = number(count)
    rows["max generated tokens (upper bound)"] = recipe.prm.generation_bound(count)
    rows["output"] = str(Path(recipe.output_dir) / "scored.jsonl")
    return rows


register(
    Command(
        name="score", help=summary_of(__doc__), recipe=ScoreRecipe, run=run, plan=_plan, shard_files=("scored.jsonl",)
    )
)
