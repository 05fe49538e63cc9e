"""ProcessBench from a PRM (first step scored under the threshold) or from a file of predicted indices."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prmkit.bench.processbench import average_f1, first_below, processbench_f1, tune_threshold
from prmkit.bench.report import bar_plot, markdown_table, rich_table
from prmkit.bench.runners import BENCHMARKS, Context, Outcome
from prmkit.data.layouts import load_records
from prmkit.data.shards import jsonl_lines
from prmkit.errors import DataError, RecipeError
from prmkit.records import Record

SUFFIXES = (".json", ".jsonl", ".parquet")
HUB_SUBSETS = ("gsm8k", "math", "olympiadbench", "omnimath")
"""The splits of the Hub copy (Qwen/ProcessBench), read when data.path is not a local file or folder."""


def subset_files(path: str, wanted: list[str] | None) -> dict[str, Path]:
    """Subset name (file stem) -> file: every data file of a folder, or the one file given."""
    root = Path(path)
    if root.is_dir():
        files = {f.stem: f for f in sorted(root.iterdir()) if f.suffix in SUFFIXES and f.is_file()}
    elif root.is_file():
        files = {root.stem: root}
    else:
        raise DataError(f"{path}: no such file or folder")
    if not files:
        raise DataError(f"{path}: no .json/.jsonl/.parquet files")
    if wanted:
        unknown = [w for w in wanted if w not in files]
        if unknown:
            raise RecipeError(f"processbench.subsets: {', '.join(unknown)} not in {path}; allowed: {', '.join(files)}")
        files = {w: files[w] for w in wanted}
    return files


def first_error(record: Record) -> int:
    value = record.meta.get("first_error")
    return int(value) if value is not None else record.first_error


def read_predictions(path: str) -> dict[str, int | None]:
    """{id: predicted index} from JSONL (or a JSON list) of {"id", "prediction"} (null = unparsed, never right)."""
    file = Path(path)
    if not file.is_file():
        raise DataError(f"{path}: predictions file not found")
    text = file.read_text(encoding="utf-8")
    rows: list[tuple[int, Any]]
    if text.lstrip().startswith("["):
        rows = list(enumerate(json.loads(text), start=1))
    else:
        rows = [(n, json.loads(line)) for n, line in enumerate(jsonl_lines(text), start=1) if line.strip()]
    out: dict[str, int | None] = {}
    for n, row in rows:
        if not isinstance(row, dict) or "id" not in row or "prediction" not in row:
            raise DataError(f"{path} line {n}: expected an object with 'id' and 'prediction'")
        pred = row["prediction"]
        if pred is not None and (isinstance(pred, bool) or not isinstance(pred, int)):
            raise DataError(f"{path} line {n}: 'prediction' must be an integer step index or null, got {pred!r}")
        out[str(row["id"])] = pred
    return out


def load_subsets(d: Any, wanted: list[str] | None) -> dict[str, list[Record]]:
    """Records per subset: one file each from a local folder (or the one file), else the Hub data set's splits."""
    from prmkit.data.readers import looks_local

    if looks_local(d.path) or Path(d.path).exists():
        files = subset_files(d.path, wanted)
        return {name: list(load_records(f, layout=d.layout, limit=d.limit, **d.options)) for name, f in files.items()}
    return {
        name: list(load_records(d.path, layout=d.layout, split=name, limit=d.limit, **d.options))
        for name in (wanted or HUB_SUBSETS)
    }


@BENCHMARKS.register("processbench")
def run(ctx: Context) -> Outcome:
    metrics = compute(ctx)
    report, rows = render(ctx.out_dir, metrics)
    return Outcome(metrics, report, rows)


def compute(ctx: Context) -> dict[str, Any]:
    """Per-subset error/correct accuracy and F1 and their unweighted mean, as ProcessBench's run_eval.py computes
    them, from a predictions file or from the PRM's step scores at the (fixed or tuned) threshold."""
    recipe = ctx.recipe
    subsets = load_subsets(recipe.data, recipe.processbench.subsets)
    empty = [name for name, records in subsets.items() if not records]
    if empty:
        raise DataError(f"{recipe.data.path}: no records in subset(s) {', '.join(empty)}: nothing to benchmark")
    labels = {name: [first_error(r) for r in records] for name, records in subsets.items()}
    threshold: float | None = None
    missing = 0
    if recipe.predictions is not None:
        given = read_predictions(recipe.predictions)
        preds = {name: [given.get(r.id) for r in records] for name, records in subsets.items()}
        missing = sum(r.id not in given for records in subsets.values() for r in records)
        source = f"predictions file {recipe.predictions}"
    else:
        scores = {name: ctx.score(records, name) for name, records in subsets.items()}
        step_scores = {name: [scores[name][r.id] for r in records] for name, records in subsets.items()}
        threshold = recipe.threshold.value
        tuned = recipe.threshold.tune_on
        if tuned is not None:
            if tuned not in subsets:
                raise RecipeError(f"threshold.tune_on: {tuned!r} is not a subset here; allowed: {', '.join(subsets)}")
            threshold, _ = tune_threshold(labels[tuned], step_scores[tuned])
        preds = {name: [first_below(s, threshold) for s in step_scores[name]] for name in subsets}
        source = f"PRM {recipe.prm.model if recipe.prm is not None else '?'}"
    per = {name: processbench_f1(labels[name], preds[name]) for name in subsets}
    avg = average_f1(per)
    metrics: dict[str, Any] = {
        "benchmark": "processbench",
        "source": source,
        "threshold": threshold,
        "threshold_tuned_on": recipe.threshold.tune_on if recipe.predictions is None else None,
        "subsets": per,
        "average_f1": avg,
        "missing_predictions": missing,
    }
    if ctx.compute:
        from prmkit.score.scoring import merge_compute

        metrics["compute"] = merge_compute(ctx.compute)
    return metrics


def render(out_dir: Path, metrics: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """report.md's text, the F1 plot, the terminal table and the summary rows, from the metrics."""
    per, avg, threshold = metrics["subsets"], metrics["average_f1"], metrics["threshold"]
    source, missing, tuned = metrics["source"], metrics["missing_predictions"], metrics["threshold_tuned_on"]
    header = ["subset", "samples", "error acc", "correct acc", "F1"]
    rows = [[n, m["n_error"] + m["n_correct"], m["error_acc"], m["correct_acc"], m["f1"]] for n, m in per.items()]
    rows_pct = [[r[0], str(r[1]), *r[2:]] for r in rows]
    rows_pct.append(["average (unweighted F1)", "", None, None, avg])
    bar_plot(
        out_dir / "processbench_f1.png",
        list(per),
        {
            "error acc": [m["error_acc"] for m in per.values()],
            "correct acc": [m["correct_acc"] for m in per.values()],
            "F1": [m["f1"] for m in per.values()],
        },
        "ProcessBench",
        "%",
    )
    how = (
        f"threshold {threshold:.4g}" + (f" (best F1 on {tuned})" if tuned else "")
        if threshold is not None
        else "predicted indices"
    )
    report = "\n".join(
        [
            "# ProcessBench",
            "",
            f"Source: {source}; {how}.",
            "",
            "Accuracies in percent. F1 is the harmonic mean of the accuracy on erroneous samples (predicted first",
            "error = label) and on correct samples (predicted -1); "
            "the average is the unweighted mean of the subsets' F1,",
            "as the paper reports (QwenLM/ProcessBench code/run_eval.py).",
            "",
            markdown_table(header, rows_pct, percent=True),
            "",
            f"{missing} samples had no prediction (counted wrong)." if missing else "",
            "![F1 per subset](processbench_f1.png)",
        ]
    )
    rich_table("ProcessBench (%)", header, rows_pct, percent=True)
    out_rows = {f"{n} F1": m["f1"] for n, m in per.items()}
    out_rows["average F1"] = avg
    if threshold is not None:
        out_rows["threshold"] = threshold
    return report, out_rows
