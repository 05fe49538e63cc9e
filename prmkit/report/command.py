"""`prmkit report RECIPE`: one report.md with PNG plots over a chain of runs, headed by whether the PRM beat majority.

Reads each stage's metrics.json (folders named in the recipe; defaults: the quickstart layout) and writes
`report.md` in output_dir: a headline paragraph computed from the data, then the policy's final-answer
accuracy, label accuracy and cost per annotation method, the PRM's first-error F1 on the planted-error set,
best-of-N accuracy against N and search accuracy against generated tokens, both next to majority vote
(`bestofn.png`, `search_accuracy_vs_tokens.png`). A stage that was not run is a line in the report, not an
error. Loads no model; runs in seconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prmkit.commands import Command, register, summary_of
from prmkit.manifest import RunManifest
from prmkit.report.headline import bestofn_comparison, pct, search_comparison
from prmkit.report.recipe import ReportRecipe
from prmkit.report.sections import BESTOFN_PNG, REPORT, SEARCH_PNG, Inputs, build_report, compare_stage


def run(recipe: ReportRecipe, recipe_path: str) -> dict[str, Any]:
    out_dir = Path(recipe.output_dir)
    manifest = RunManifest(out_dir, "report", recipe, recipe_path)
    for stale in (BESTOFN_PNG, SEARCH_PNG):  # a plot whose stage has since gone must not linger
        (out_dir / stale).unlink(missing_ok=True)
    text, inputs = build_report(recipe, out_dir)
    (out_dir / REPORT).write_text(text, encoding="utf-8")
    stages = inputs.all()
    counts = {"stages read": sum(s.ran for s in stages), "stages missing": sum(not s.ran for s in stages)}
    manifest.finish(counts)
    rows: dict[str, Any] = dict(counts)
    for stage, compare, label in (
        (inputs.bestofn, bestofn_comparison, "best-of-N"),
        (inputs.search, search_comparison, "search"),
    ):
        c = compare_stage(stage, compare)
        if c is not None:
            rows[f"{label} @N={c.n}: best PRM ({c.method}) vs majority"] = (
                f"{pct(c.prm)} vs {pct(c.majority)} ({c.verdict})"
            )
    rows["report"] = str(out_dir / REPORT)
    return rows


def _plan(recipe: ReportRecipe) -> dict[str, Any]:
    inputs = Inputs(recipe)
    rows: dict[str, Any] = {s.folder: "found" if s.ran else "missing (a line in the report)" for s in inputs.all()}
    rows["output"] = str(Path(recipe.output_dir) / REPORT)
    return rows


register(Command(name="report", help=summary_of(__doc__), recipe=ReportRecipe, run=run, plan=_plan))
