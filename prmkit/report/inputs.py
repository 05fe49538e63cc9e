"""Reading what the stages left on disk: each stage folder's metrics.json (and its manifest's status).

A missing or unreadable input is never an error here: it becomes a `Stage` with no metrics and a note that
says why, which the report prints in place of that stage's section.
"""

from __future__ import annotations

import glob
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Stage:
    name: str
    """What the stage is, in words (e.g. "policy (prmkit train)")."""
    folder: str
    metrics: dict[str, Any] | None = None
    note: str | None = None
    """Why there are no metrics, or a caveat about them (e.g. the run did not finish)."""

    @property
    def ran(self) -> bool:
        return self.metrics is not None

    @property
    def data(self) -> dict[str, Any]:
        """The metrics of a stage that ran ({} for one that did not)."""
        return self.metrics if self.metrics is not None else {}

    def missing_line(self) -> str:
        return f"_{self.name}: {self.note}._"


def read_stage(name: str, folder: str) -> Stage:
    """The stage's metrics.json, or a note: not run, unreadable, or incomplete (its manifest says so)."""
    path = Path(folder) / "metrics.json"
    if not path.is_file():
        where = (
            ("no folder matches" if glob.has_magic(folder) else "no such folder")
            if not Path(folder).exists()
            else "no metrics.json there"
        )
        return Stage(name, folder, note=f"stage not run (`{folder}`: {where})")
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return Stage(name, folder, note=f"could not read `{path}` ({exc})")
    if not isinstance(metrics, dict):
        return Stage(name, folder, note=f"could not read `{path}` (not a JSON object)")
    return Stage(name, folder, metrics, note=_status_note(Path(folder)))


def _status_note(folder: Path) -> str | None:
    """A caveat when the run's manifest says it did not complete (metrics may then cover part of the run)."""
    try:
        status = json.loads((folder / "manifest.json").read_text(encoding="utf-8")).get("status")
    except (OSError, ValueError, AttributeError):
        return None
    return None if status in (None, "complete") else f"the run's manifest says {status!r}, not complete"


def expand(patterns: list[str]) -> list[str]:
    """Folders named by the patterns, in order, each once; a pattern that matches nothing stays as given (so
    the report can say that stage was not run)."""
    out: list[str] = []
    for pattern in patterns:
        matches = sorted(p for p in glob.glob(pattern) if Path(p).is_dir()) if glob.has_magic(pattern) else [pattern]
        for folder in matches or [pattern]:
            if folder not in out:
                out.append(folder)
    return out


def temperature_of(key: str) -> float | None:
    """`answer_accuracy@T0.7` -> 0.7 (the policy evaluation's key layout)."""
    _, sep, temp = key.partition("@T")
    try:
        return float(temp) if sep else None
    except ValueError:
        return None


def policy_accuracy(metrics: dict[str, Any]) -> list[tuple[float, float, float | None]]:
    """(temperature, final-answer accuracy, process accuracy) per decoding the policy was evaluated with."""
    block = metrics.get("policy") or {}
    out = []
    for key, value in block.items():
        temp = temperature_of(key)
        if key.startswith("answer_accuracy@") and temp is not None and isinstance(value, (int, float)):
            out.append((temp, float(value), block.get(f"process_accuracy@T{key.partition('@T')[2]}")))
    return sorted(out)


def decoding_name(temp: float) -> str:
    return "greedy" if temp == 0 else f"sampled (T = {temp:g})"


@dataclass
class LabelAudit:
    run: str
    method: str
    labels: str
    """Which labels were audited: `labels` (those written), or for mc `mc_hard` / `mc_soft@0.5`."""
    audit: dict[str, Any] | None
    cost: dict[str, Any]
    labelled: int | None
    rejected: int | None


def label_audits(stage: Stage) -> list[LabelAudit]:
    """One row per audited label set of an annotate run (one row with no audit when the truth was unknown)."""
    m = stage.metrics or {}
    run, method, cost = stage.folder, str(m.get("method", "?")), m.get("cost") or {}
    labelled, rejected = m.get("labelled"), m.get("rejected")
    audits = m.get("audit") or {}
    if not audits:
        return [LabelAudit(run, method, "labels", None, cost, labelled, rejected)]
    return [
        LabelAudit(run, method, key, value, cost, labelled, rejected)
        for key, value in audits.items()
        if isinstance(value, dict)
    ]
