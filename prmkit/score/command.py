"""`prmkit score RECIPE`: per-step scores for solutions from a PRM, written beside the steps.

Reads records in any supported layout and writes `scored.jsonl`: each record with `scores` (one per scored
step) and `meta["aggregates"]` (min, last, prod, mean over the step scores). Records are scored in chunks and
appended as they finish, so a killed run started again scores only what is missing. `metrics.json` counts
scored tokens and wall time.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from pydantic import Field

from prmkit.commands import Command, register, summary_of
from prmkit.console import progress_bar
from prmkit.data.layouts import load_records
from prmkit.data.shards import ResumableWriter, select_shard
from prmkit.engines.scoring import Scorer, aggregate
from prmkit.errors import DataError, RecipeError
from prmkit.manifest import RunManifest
from prmkit.models.loading import resolve_model
from prmkit.recipe import Section
from prmkit.records import Record
from prmkit.score.recipe import PRMSpec, build_scorer
from prmkit.sections import DataSpec


class ScoreRecipe(Section):
    seed: int = 0
    output_dir: str
    data: DataSpec
    prm: PRMSpec
    shard: str | None = None
    """`i/n`: this run scores records k with k mod n == i."""
    chunk_size: int = Field(default=64, ge=1)
    """Records per scorer call (and per resume unit)."""


RESUME_SAFE = frozenset({"prm.device", "prm.max_batch_size", "prm.max_batch_tokens", "chunk_size"})


def scored_record(record: Record, result: Any) -> Record:
    """The record with its step scores, aggregates and (when any) the count of unscored steps."""
    record.scores = [float(s) for s in result.scores]
    record.meta["aggregates"] = aggregate(record.scores)
    if result.dropped_steps:
        record.meta["unscored_steps"] = result.dropped_steps
    for key, value in result.extra.items():
        record.meta[f"score_{key}"] = value
    return record


class LazyScorer:
    """Builds the scorer on first use (a resumed run with nothing left loads no model); one model for many calls."""

    def __init__(self, make: Callable[[], Scorer]) -> None:
        self._make = make
        self.scorer: Scorer | None = None

    def get(self) -> Scorer:
        if self.scorer is None:
            self.scorer = self._make()
        return self.scorer

    def stats(self) -> dict[str, Any]:
        return self.scorer.stats.as_dict() if self.scorer is not None else {}

    def close(self) -> None:
        if self.scorer is not None:
            self.scorer.close()
            self.scorer = None

    def __enter__(self) -> "LazyScorer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def score_into(
    records: list[Record], writer: ResumableWriter, scorer: LazyScorer, chunk_size: int, label: str = "scoring"
) -> dict[str, Any]:
    """Score the records not yet in `writer` and append them as each chunk finishes.

    Returns this call's compute counters (scored/generated tokens, wall time, forward passes, resumed records).
    """
    todo = [r for r in records if r.id not in writer]
    t0 = time.perf_counter()
    before = scorer.stats()
    if todo:
        with progress_bar(label, total=len(records)) as advance:
            advance(len(records) - len(todo))
            for k in range(0, len(todo), chunk_size):
                chunk = todo[k : k + chunk_size]
                results = scorer.get().score([(r.problem, r.steps) for r in chunk])
                for record, result in zip(chunk, results):
                    writer.write(scored_record(record, result))
                advance(len(chunk))
    writer.mark_complete(len(records))
    after = scorer.stats()

    def delta(key: str) -> int:
        return int(after.get(key, 0) - before.get(key, 0))

    return {
        "scored_tokens_this_run": delta("scored_tokens"),
        "generated_tokens_this_run": delta("generated_tokens"),
        "forward_passes_this_run": delta("forward_passes"),
        "truncated_records_this_run": delta("truncated_records"),
        "unscored_steps_this_run": delta("unscored_steps"),
        "wall_s_this_run": round(time.perf_counter() - t0, 3),
        "records_scored_this_run": len(todo),
        "records_resumed": len(records) - len(todo),
    }


def merge_compute(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Counters of several score_into calls added up."""
    out: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            out[key] = round(out.get(key, 0) + value, 3)
    return out


def read_scored(path: Path) -> list[Record]:
    with open(path, encoding="utf-8") as fh:
        return [Record.from_dict(json.loads(line)) for line in fh if line.strip()]


def load_data(spec: DataSpec, shard: str | None = None) -> list[Record]:
    records = list(load_records(spec.path, layout=spec.layout, split=spec.split, subset=spec.subset,
                                limit=spec.limit, **spec.options))
    if not records:
        raise DataError(f"{spec.path}: no records")
    return select_shard(records, shard)


def summarize(records: Iterable[Record]) -> dict[str, Any]:
    """Counts, mean aggregates, and step accuracy at 0.5 where records carry labels."""
    records = list(records)
    out: dict[str, Any] = {"records": len(records), "steps_scored": sum(len(r.scores or []) for r in records),
                           "steps_unscored": sum(r.meta.get("unscored_steps", 0) for r in records)}
    for name in ("min", "last", "prod", "mean"):
        vals = [r.meta["aggregates"][name] for r in records if r.meta.get("aggregates", {}).get(name) is not None]
        out[f"mean_{name}"] = sum(vals) / len(vals) if vals else None
    pairs = [(s, l) for r in records if r.labels and r.scores for s, l in zip(r.scores, r.labels)]
    out["step_accuracy@0.5"] = sum((s >= 0.5) == (l >= 0.5) for s, l in pairs) / len(pairs) if pairs else None
    return out


def run(recipe: ScoreRecipe, recipe_path: str) -> dict[str, Any]:
    out_dir = Path(recipe.output_dir)
    source = Path(recipe.data.path).expanduser()
    if source.exists() and (source.resolve() == out_dir.resolve() or out_dir.resolve() in source.resolve().parents):
        raise RecipeError(f"data.path {recipe.data.path!r} lies in this run's output_dir {recipe.output_dir!r}: "
                          "score would read its own output; write the scores elsewhere")
    records = load_data(recipe.data, recipe.shard)
    resolve_model(recipe.prm.model)  # a typo fails before the output folder is claimed by this recipe
    manifest = RunManifest(out_dir, "score", recipe, recipe_path, resume_safe=RESUME_SAFE)
    seen: set[str] = set()
    for r in records:
        if r.id in seen:
            raise DataError(f"{recipe.data.path}: record id {r.id!r} appears twice; ids must be unique")
        seen.add(r.id)
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


def prm_label(spec: PRMSpec) -> str:
    """How a plan names a PRM: model (engine, where it comes from) and the format it is read with."""
    from prmkit.data.plan import model_label

    fmt = "an LLM verifier" if spec.engine == "generative" else f"format {spec.format}"
    return f"{model_label(spec.model, spec.engine)}, {fmt}"


def generation_bound(spec: PRMSpec, solutions: int | None) -> str:
    """Tokens a PRM generates: none for a discriminative one; k critiques x max_new_tokens per solution (twice
    with BiPRM) for an LLM verifier."""
    if spec.engine != "generative":
        return "0 (a discriminative PRM scores, it generates nothing)"
    per = spec.generative.k * spec.generative.max_new_tokens * (2 if spec.bidirectional else 1)
    if solutions is None:
        return f"{per:,} per solution (k {spec.generative.k} x max_new_tokens {spec.generative.max_new_tokens})"
    return f"{solutions * per:,}"


def _plan(recipe: ScoreRecipe) -> dict[str, Any]:
    from prmkit.data.plan import number, plan_data

    data = plan_data(recipe.data, recipe.shard)
    rows: dict[str, Any] = {"prm": prm_label(recipe.prm), "data": data.label}
    if data.readable:
        records = load_data(recipe.data, recipe.shard)
        count: int | None = len(records)
        rows.update({"records": f"{len(records):,}", "steps": f"{sum(len(r.steps) for r in records):,}"})
    else:
        count = data.count
        rows["records"] = number(count)
    rows["max generated tokens (upper bound)"] = generation_bound(recipe.prm, count)
    rows["output"] = str(Path(recipe.output_dir) / "scored.jsonl")
    return rows


register(Command(name="score", help=summary_of(__doc__), recipe=ScoreRecipe, run=run, plan=_plan))
