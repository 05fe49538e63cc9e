"""`prmkit world RECIPE`: the embedded world's data: problems with reference solutions and a planted-error benchmark.

Outputs (in output_dir): `<split>.jsonl` per split (prmkit records: problem, reference steps, answer),
`processbench.json` (the planted-error set in ProcessBench's own layout, so any ProcessBench tool reads it)
and `planted.jsonl` (the same set as prmkit records, with the error type in meta). Splits never share a
problem text, and everything is a pure function of (task, difficulty, seed, sizes).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from prmkit.commands import Command, register, summary_of
from prmkit.console import progress_bar
from prmkit.manifest import RunManifest
from prmkit.records import Record
from prmkit.tasks import get_task
from prmkit.world.recipe import WorldRecipe


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def make_splits(recipe: WorldRecipe, advance: Any = lambda n=1: None) -> dict[str, list[Record]]:
    """Problems per split. Split k draws from seed stream (seed, k); a text already used by an earlier split
    is skipped, so no test problem leaks from train."""
    task = get_task(recipe.task)
    difficulty = task.difficulty(recipe.difficulty)
    used: set[str] = set()
    out: dict[str, list[Record]] = {}
    for k, (name, size) in enumerate(recipe.splits.items()):
        stream_seed = recipe.seed * 1000 + k
        records: list[Record] = []
        index = 0
        while len(records) < size:
            problem = task.problem_at(index, stream_seed, difficulty)
            index += 1
            if problem.text in used:
                continue
            used.add(problem.text)
            record = task.to_record(problem)
            record.meta["split"] = name
            records.append(record)
            advance(1)
        out[name] = records
    return out


def run(recipe: WorldRecipe, recipe_path: str) -> dict[str, Any]:
    out_dir = Path(recipe.output_dir)
    manifest = RunManifest(out_dir, "world", recipe, recipe_path)
    task = get_task(recipe.task)
    total = sum(recipe.splits.values()) + recipe.planted.n
    with progress_bar("making the world", total=total) as advance:
        splits = make_splits(recipe, advance)
        planted = task.planted_errors(
            recipe.planted.n,
            recipe.seed * 1000 + 999,
            task.difficulty(recipe.difficulty),
            correct_share=recipe.planted.correct_share,
            types=recipe.planted.types,
        )
        advance(len(planted))
    for name, records in splits.items():
        _write_atomic(out_dir / f"{name}.jsonl", "".join(r.to_json() + "\n" for r in records))
    _write_atomic(out_dir / "planted.jsonl", "".join(r.to_json() + "\n" for r in planted))
    rows = [task.to_processbench_row(r) for r in planted]
    _write_atomic(out_dir / "processbench.json", json.dumps(rows, ensure_ascii=False, indent=1) + "\n")
    counts = {f"{name} problems": len(records) for name, records in splits.items()}
    counts["planted records"] = len(planted)
    counts["planted with an error"] = sum(r.meta["first_error"] >= 0 for r in planted)
    manifest.finish(counts)
    return {**counts, "output": str(out_dir)}


def _plan(recipe: WorldRecipe) -> dict[str, Any]:
    get_task(recipe.task).difficulty(recipe.difficulty)  # validates the difficulty without writing anything
    return {
        "task": recipe.task,
        **{f"{k} problems": v for k, v in recipe.splits.items()},
        "planted records": recipe.planted.n,
        "output": recipe.output_dir,
    }


register(Command(name="world", help=summary_of(__doc__), recipe=WorldRecipe, run=run, plan=_plan))
