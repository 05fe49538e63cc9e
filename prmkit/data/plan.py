"""What a dry run (`prmkit CMD RECIPE --dry-run`) can say about a recipe's data and models offline.

A dry run reads no Hub data and loads no model, so it is quick and works with no network:

- a local file or folder that exists is read, so its counts are exact;
- a local path that does not exist yet is the output of an earlier stage (a chain's `samples.jsonl`,
  `labels.jsonl`, `final/` checkpoint): the plan says so instead of failing, and counts that depend on it
  are left to run time;
- a Hub data set is never downloaded: its size comes from `KNOWN_SIZES`, the published row counts of the
  well-known splits; any other Hub set's size is read at run time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prmkit.data.readers import looks_local
from prmkit.data.shards import parse_shard

AT_RUN_TIME = "read at run time"
NOT_YET = "not present yet"
EARLIER_STAGE = "not present yet: an earlier stage writes it"

KNOWN_SIZES: dict[tuple[str, str | None], dict[str, int]] = {
    ("openai/gsm8k", "main"): {"train": 7473, "test": 1319},
    ("HuggingFaceH4/MATH-500", None): {"test": 500},
    ("DigitalLearningGmbH/MATH-lighteval", None): {"train": 7500, "test": 5000},
    ("Qwen/ProcessBench", None): {"gsm8k": 400, "math": 1000, "olympiadbench": 1000, "omnimath": 1000},
}
"""Rows per split of well-known Hub data sets ((id, subset) -> {split: rows}; every split the set has), as
published on their data set cards; `("id", None)` is the set's default configuration."""


def hub_size(path: str, subset: str | None, split: str | None) -> int | None:
    """Rows of a Hub data set split (all splits when `split` is None) from `KNOWN_SIZES`, else None."""
    splits = KNOWN_SIZES.get((path, subset))
    if splits is None and subset in (None, "default"):
        splits = KNOWN_SIZES.get((path, None))
    if splits is None:
        return None
    if split is None:
        return sum(splits.values())
    return splits.get(split)


def shard_count(total: int, shard: str | None) -> int:
    """How many of `total` items the round-robin shard `i/n` gets (item k goes to shard k mod n)."""
    i, n = parse_shard(shard)
    return max(0, math.ceil((total - i) / n))


def is_hub(path: str) -> bool:
    return not looks_local(path)


def present(path: str) -> bool:
    return Path(path).expanduser().exists()


def missing(path: str) -> str:
    """Why a local path is absent: a chain's output folder (runs/...) is written by an earlier stage."""
    first = Path(path).parts[0] if Path(path).parts else ""
    return EARLIER_STAGE if first == "runs" else NOT_YET


@dataclass
class DataPlan:
    """A DataSpec as a dry run sees it: where it comes from, whether it can be read now, and its size if known."""

    label: str
    where: str
    """local (exists: the plan may read it for exact counts), missing (a local path not written yet) or hub."""
    count: int | None
    """Rows after `limit` (and shard), when known without reading (a Hub set of known size); else None."""

    @property
    def readable(self) -> bool:
        return self.where == "local"


def plan_data(spec: Any, shard: str | None = None) -> DataPlan:
    """Describe a `DataSpec` (path, subset, split, limit) for a plan, touching no network."""
    name = spec.path
    extra = [f"{k} {v}" for k, v in (("subset", spec.subset), ("split", spec.split)) if v is not None]
    limit = [f"limit {spec.limit}"] if spec.limit is not None else []
    if not is_hub(spec.path):
        if present(spec.path):
            shown = extra + limit
            return DataPlan(f"{name}" + (f" ({', '.join(shown)})" if shown else ""), "local", None)
        return DataPlan(f"{name} ({missing(spec.path)})", "missing", None)
    size = hub_size(spec.path, spec.subset, spec.split)
    extra.insert(0, "Hub")
    if size is None:
        extra += [f"size {AT_RUN_TIME}", *limit]
        return DataPlan(f"{name} ({', '.join(extra)})", "hub", None)
    count = min(size, spec.limit) if spec.limit is not None else size
    extra += [f"{size:,} rows", *limit]
    return DataPlan(f"{name} ({', '.join(extra)})", "hub", shard_count(count, shard))


def model_label(model: str, engine: str | None = None) -> str:
    """'Qwen/X (vllm, Hub)', 'runs/a/final (hf, local)' or 'runs/a/final (hf, not present yet: ...)'.

    A name that is not a local path is taken for a Hub id; a dry run does not ask the Hub whether it exists."""
    parts = [engine] if engine else []
    from prmkit.models.gguf import describe, is_gguf

    if is_gguf(model) and present(model):
        parts.append(describe(model))
    elif present(model):
        parts.append("local")
    elif looks_local(model) or model.startswith("models/"):
        parts.append(missing(model))
    else:
        parts.append("Hub")
    return f"{model} ({', '.join(parts)})"


def number(value: int | None, unknown: str = AT_RUN_TIME) -> str:
    """A count for a plan row: 1,234,567, or what stands in for a count only known at run time."""
    return unknown if value is None else f"{value:,}"
