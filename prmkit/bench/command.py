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

RESUME_SAFE = frozenset(
    {
        "prm.device",
        "prm.max_batch_size",
        "prm.max_batch_tokens",
        "prm.prefix_cache_mb",
        "chunk_size",
        "threshold.fixed",
        "threshold.tune_on",
        "bestofn.trials",
        "bestofn.ns",
        "bestofn.aggregates",
        "bestofn.weighted_aggregate",
        "processbench.subsets",
    }
)
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
    rows = {**outcome.rows, "report": str(out_dir / "report.md")}
    if ctx.cluster is not None:
        from prmkit.launcher import record_launch

        rows["ray cluster"] = record_launch(out_dir, recipe.launcher, ctx.cluster)
    return rows


def _plan(recipe: BenchRecipe) -> dict[str, Any]:
    """Benchmark, PRM (or predictions), data and counts; local data is counted, Hub data by known size; no model."""
    from prmkit.data.plan import missing, number, plan_data, present

    data = plan_data(recipe.data)
    rows: dict[str, Any] = {"benchmark": recipe.benchmark}
    if recipe.prm is not None:
        rows["prm"] = recipe.prm.label()
    elif recipe.predictions is not None:
        absent = "" if present(recipe.predictions) else f" ({missing(recipe.predictions)})"
        rows["predictions"] = recipe.predictions + absent
    else:
        rows["source"] = "scores in the data"
    rows["data"] = data.label
    count = _count(recipe, data)
    if isinstance(count, dict):
        rows.update({f"{name} records": number(n) for name, n in count.items()})
        total = None if any(n is None for n in count.values()) else sum(n or 0 for n in count.values())
    else:
        rows["records"] = number(count)
        total = count
    if recipe.prm is not None:
        rows["max generated tokens (upper bound)"] = recipe.prm.generation_bound(total)
    rows["output"] = str(Path(recipe.output_dir) / "report.md")
    return rows


def _count(recipe: BenchRecipe, data: Any) -> int | dict[str, int | None] | None:
    """Records the benchmark reads: per subset for ProcessBench, else one count (None: known at run time)."""
    from prmkit.data.plan import hub_size

    d = recipe.data
    if recipe.benchmark == "processbench":
        from prmkit.bench.runners.processbench import HUB_SUBSETS, load_subsets

        if data.readable:
            return {name: len(rs) for name, rs in load_subsets(d, recipe.processbench.subsets).items()}
        if data.where != "hub":
            return None
        sizes = {name: hub_size(d.path, d.subset, name) for name in (recipe.processbench.subsets or HUB_SUBSETS)}
        return {name: None if n is None else min(n, d.limit or n) for name, n in sizes.items()}
    if not data.readable:
        return data.count
    if recipe.benchmark == "prmbench":
        from prmkit.bench.runners.prmbench import data_files, read_samples

        return len(read_samples(data_files(d.path, recipe.prmbench.files), d.limit))
    return sum(1 for _ in d.iter_records())


register(Command(name="bench", help=summary_of(__doc__), recipe=BenchRecipe, run=run, plan=_plan))
