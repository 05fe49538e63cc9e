"""Scoring records with a PRM, for every stage that does (score, bench): a lazily built scorer, the resumable
scoring loop with its compute counters, and reading scored records back."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prmkit.console import progress_bar
from prmkit.data.shards import ResumableWriter, read_records, select_shard
from prmkit.engines.scoring import Scorer, aggregate
from prmkit.records import Record
from prmkit.sections import DataSpec


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

    def __enter__(self) -> LazyScorer:
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
    return read_records(path)


def load_data(spec: DataSpec, shard: str | None = None) -> list[Record]:
    return select_shard(spec.load(), shard)
