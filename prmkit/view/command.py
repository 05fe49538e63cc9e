"""`prmkit view RECIPE_OR_RUN`: one self-contained HTML page of solutions, steps coloured by label or PRM score.

`prmkit view runs/x/annotate --output page.html` (a run folder or a records file; a recipe works too) writes
one file with the data, styles and script inline (no network): each solution's steps coloured by label or
score, the label's, the PRM's and the truth's first errors marked, filters (wrong answers only, label and truth
disagree, PRM and label disagree) and a search box. With a `prm:` section the PRM scores the steps first.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from prmkit.commands import Command, register, summary_of
from prmkit.errors import DataError
from prmkit.view.page import RUN_FILES, render
from prmkit.view.recipe import ViewRecipe


def from_path(path: str) -> dict[str, Any]:
    """The recipe for `prmkit view PATH`: the records file, or the first stage output found in a run folder."""
    source = Path(path)
    if source.is_dir():
        found = next((source / f for f in RUN_FILES if (source / f).is_file()), None)
        if found is None:
            raise DataError(f"{path}: no {', '.join(RUN_FILES)} here; name a records file or a run folder")
        return {"data": {"path": str(found)}, "output": str(source / "view.html")}
    return {"data": {"path": str(source)}, "output": str(source.with_name("view.html"))}


def _score(recipe: ViewRecipe, records: list[Any]) -> None:
    """Step scores from the recipe's PRM, in place."""
    from prmkit.score.recipe import build_scorer

    assert recipe.prm is not None
    scorer = build_scorer(recipe.prm, recipe.seed)
    try:
        for k in range(0, len(records), recipe.chunk_size):
            chunk = records[k : k + recipe.chunk_size]
            for record, result in zip(chunk, scorer.score([(r.problem, r.steps) for r in chunk])):
                record.scores = list(result.scores) + [float("nan")] * result.dropped_steps
    finally:
        scorer.close()


def run(recipe: ViewRecipe, recipe_path: str) -> dict[str, Any]:
    records = recipe.data.load("solutions to show", unique_ids=False)
    if recipe.prm is not None:
        _score(recipe, records)
    page = render(records, recipe.title, recipe.data.path, recipe.threshold)
    out = Path(recipe.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.write_text(page, encoding="utf-8")
    os.replace(partial, out)  # a reader never sees half a page
    return {
        "solutions": len(records),
        "with labels": sum(r.labels is not None for r in records),
        "with PRM scores": sum(r.scores is not None for r in records),
        "page": f"{out} ({len(page.encode()) / 1e6:.1f} MB)",
    }


def _plan(recipe: ViewRecipe) -> dict[str, Any]:
    from prmkit.data.plan import plan_data

    rows: dict[str, Any] = {"data": plan_data(recipe.data).label}
    if recipe.prm is not None:
        rows["prm"] = recipe.prm.label()
    rows["output"] = recipe.output
    return rows


register(
    Command(
        name="view",
        help=summary_of(__doc__),
        recipe=ViewRecipe,
        run=run,
        plan=_plan,
        from_path=from_path,
        output_key="output",
    )
)
