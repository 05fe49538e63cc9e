"""`prmkit bench RECIPE`: the numbers papers report for a PRM (ProcessBench, PRMBench, best-of-N), with
metrics.json, report.md, PNG plots and a table in the terminal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prmkit.bench.recipe import BenchRecipe
from prmkit.bench.report import write_outputs
from prmkit.bench.runners import BENCHMARKS, Context
from prmkit.commands import Command, register, summary_of
from prmkit.manifest import RunManifest
from prmkit.models.loading import resolve_model

RESUME_SAFE = frozenset({"prm.device", "prm.max_batch_size", "prm.max_batch_tokens", "chunk_size", "threshold.fixed",
                         "threshold.tune_on", "bestofn.trials", "bestofn.ns", "bestofn.aggregates",
                         "bestofn.weighted_aggregate", "processbench.subsets"})
"""Keys that change the report but not the cached scores, so a rerun may change them in the same folder."""


def run(recipe: BenchRecipe, recipe_path: str) -> dict[str, Any]:
    out_dir = Path(recipe.output_dir)
    if recipe.prm is not None:
        resolve_model(recipe.prm.model)  # a typo fails before the output folder is claimed by this recipe
    manifest = RunManifest(out_dir, "bench", recipe, recipe_path, resume_safe=RESUME_SAFE)
    ctx = Context(recipe, out_dir)
    try:
        outcome = BENCHMARKS.get(recipe.benchmark)(ctx)
    finally:
        ctx.close()
    write_outputs(out_dir, outcome.metrics, outcome.report)
    manifest.finish({k: v for k, v in outcome.rows.items() if isinstance(v, (int, float)) or v is None})
    return {**outcome.rows, "report": str(out_dir / "report.md")}


def _plan(recipe: BenchRecipe) -> dict[str, Any]:
    source = f"{recipe.prm.model} ({recipe.prm.engine})" if recipe.prm else (recipe.predictions or "scores in data")
    return {"benchmark": recipe.benchmark, "data": recipe.data.path, "source": source,
            "output": str(Path(recipe.output_dir) / "report.md")}


register(Command(name="bench", help=summary_of(__doc__), recipe=BenchRecipe, run=run, plan=_plan))
