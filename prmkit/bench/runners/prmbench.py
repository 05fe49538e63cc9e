"""PRMBench: per error class PRMScore (0.5 F1 + 0.5 negative F1), step accuracies and first-error accuracy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prmkit.bench.prmbench import Sample, prmbench_metrics, samples_from_rows
from prmkit.bench.report import bar_plot, markdown_table, rich_table
from prmkit.bench.runners import BENCHMARKS, Context, Outcome
from prmkit.data.readers import read_rows
from prmkit.data.shards import jsonl_lines
from prmkit.errors import DataError, RecipeError
from prmkit.records import Record

EXCLUDED_BY_DEFAULT = ("subset400.jsonl",)


def data_files(path: str, wanted: list[str] | None) -> list[Path]:
    root = Path(path)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise DataError(f"{path}: no such file or folder")
    files = sorted(f for f in root.glob("*.jsonl") if f.is_file())
    if wanted:
        names = {f.name: f for f in files}
        unknown = [w for w in wanted if w not in names]
        if unknown:
            raise RecipeError(f"prmbench.files: {', '.join(unknown)} not in {path}; allowed: {', '.join(names)}")
        return [names[w] for w in wanted]
    files = [f for f in files if f.name not in EXCLUDED_BY_DEFAULT]
    if not files:
        raise DataError(f"{path}: no .jsonl files")
    return files


def read_samples(files: list[Path], limit: int | None) -> list[Sample]:
    rows = []
    for f in files:
        for origin, number, row in read_rows(f):
            missing = [
                k
                for k in ("idx", "classification", "modified_process", "original_process", "error_steps")
                if k not in row
            ]
            if missing:
                raise DataError(f"{origin} line {number}: not a PRMBench row (missing {', '.join(missing)})")
            rows.append(row)
    samples = samples_from_rows(rows)
    return samples[:limit] if limit else samples


def read_score_file(path: str) -> dict[str, list[float]]:
    file = Path(path)
    if not file.is_file():
        raise DataError(f"{path}: predictions file not found")
    out = {}
    for n, line in enumerate(jsonl_lines(file.read_text(encoding="utf-8")), start=1):
        if line.strip():
            row = json.loads(line)
            if not isinstance(row, dict) or "id" not in row or not isinstance(row.get("scores"), list):
                raise DataError(f"{path} line {n}: expected an object with 'id' and a 'scores' list")
            out[str(row["id"])] = [float(s) for s in row["scores"]]
    return out


@BENCHMARKS.register("prmbench")
def run(ctx: Context) -> Outcome:
    metrics = compute(ctx)
    report, rows = render(ctx.out_dir, metrics)
    return Outcome(metrics, report, rows)


def compute(ctx: Context) -> dict[str, Any]:
    """PRMScore and its parts per error class and overall, as PRMBench computes them, from the PRM's step
    scores (or a scores file) at the fixed threshold or on score differences."""
    recipe = ctx.recipe
    if recipe.threshold.tune_on is not None:
        raise RecipeError("prmbench uses a fixed threshold (threshold.fixed; PRMBench's default 0.5)")
    samples = read_samples(data_files(recipe.data.path, recipe.prmbench.files), recipe.data.limit)
    if recipe.predictions is not None:
        scores = read_score_file(recipe.predictions)
        source = f"scores file {recipe.predictions}"
    else:
        records = [
            Record(id=s.id, problem=s.question, steps=s.steps, meta={"classification": s.classification})
            for s in samples
        ]
        scores = ctx.score(records, "prmbench")
        source = f"PRM {recipe.prm.model if recipe.prm is not None else '?'}"
    rule = recipe.prmbench.step_rule
    threshold = recipe.prmbench.difference_threshold if rule == "difference" else recipe.threshold.value
    metrics: dict[str, Any] = {
        "benchmark": "prmbench",
        "source": source,
        **prmbench_metrics(samples, scores, threshold, rule),
    }
    if ctx.compute:
        from prmkit.score.scoring import merge_compute

        metrics["compute"] = merge_compute(ctx.compute)
    metrics["step_rule"], metrics["threshold"] = rule, threshold
    return metrics


def render(out_dir: Path, metrics: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """report.md's text, the PRMScore plot, the terminal table and the summary rows, from the metrics."""
    source, rule, threshold = metrics["source"], metrics["step_rule"], metrics["threshold"]
    classes = metrics["classes"]
    header = ["class", "PRMScore", "F1", "neg. F1", "step acc", "first-error acc", "similarity"]
    keys = ["prm_score", "f1", "negative_f1", "total_step_acc", "first_error_acc", "similarity"]
    rows = [[name, *[m[k] for k in keys]] for name, m in classes.items()]
    rows.append(["overall", *[metrics["overall"][k] for k in keys]])
    names = [n for n in classes if n != "correct"]
    bar_plot(
        out_dir / "prmbench_prmscore.png",
        names,
        {"PRMScore": [classes[n]["prm_score"] for n in names]},
        "PRMBench PRMScore per error class",
        "%",
    )
    report = "\n".join(
        [
            "# PRMBench",
            "",
            f"Source: {source}; a step is judged valid when "
            + (
                f"its score is > {threshold}."
                if rule == "score"
                else f"its score minus the one before (the first: its score) is > {threshold}."
            ),
            "",
            "In percent. PRMScore = 0.5 F1 (valid steps) + 0.5 negative F1 (erroneous steps), F1 alone for",
            "multi_solutions, as PRMBench computes it (ssmisya/PRMBench mr_eval/tasks/prmtest_classified/task.py and",
            "form_latex_strs.ipynb). The overall row pools every modified sample; `correct` holds the originals.",
            "",
            markdown_table(header, rows, percent=True),
            "",
            f"Samples: {metrics['samples']}; share of modified samples scored: {metrics['scored_share']}.",
            "",
            "![PRMScore per class](prmbench_prmscore.png)",
        ]
    )
    rich_table("PRMBench (%)", header, rows, percent=True)
    out_rows = {"overall PRMScore": metrics["overall"]["prm_score"], "samples": metrics["samples"]}
    out_rows.update({f"{n} PRMScore": classes[n]["prm_score"] for n in names})
    return report, out_rows
