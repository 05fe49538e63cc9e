"""The one record type that flows through every stage: a solution to a problem, cut into steps."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

KNOWN_FIELDS = ("id", "problem", "steps", "answer", "reference", "correct", "labels", "scores", "meta")


@dataclass
class Record:
    """One solution. `labels` are per-step targets (hard 0/1 or soft floats in [0, 1]); `scores` a PRM's outputs.

    Fields a stage does not know are kept in `extra` and written back unchanged.
    """

    id: str
    problem: str
    steps: list[str] = field(default_factory=list)
    answer: str | None = None
    reference: str | None = None
    correct: bool | None = None
    labels: list[float] | None = None
    scores: list[float] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Record:
        if "id" not in d or "problem" not in d:
            missing = [k for k in ("id", "problem") if k not in d]
            raise ValueError(f"record lacks required field(s): {', '.join(missing)}")
        for key in ("id", "problem"):
            if d[key] is None or (key == "id" and not isinstance(d[key], (str, int))) or d[key] == "":
                raise ValueError(
                    f"field {key!r} is {d[key]!r}; it must be a non-empty "
                    f"{'string or integer' if key == 'id' else 'string'}"
                )
        steps = d.get("steps") or []
        if not isinstance(steps, list) or not all(isinstance(s, str) for s in steps):
            raise ValueError("'steps' must be a list of strings")
        labels = d.get("labels")
        if labels is not None:
            labels = [float(x) for x in labels]  # soft labels stay floats: never int()
        scores = d.get("scores")
        if scores is not None:
            scores = [float(x) for x in scores]
        return cls(
            id=str(d["id"]),
            problem=str(d["problem"]),
            steps=list(steps),
            answer=d.get("answer"),
            reference=d.get("reference"),
            correct=d.get("correct"),
            labels=labels,
            scores=scores,
            meta=dict(d.get("meta") or {}),
            extra={k: v for k, v in d.items() if k not in KNOWN_FIELDS},
        )

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "problem": self.problem,
            "steps": self.steps,
            "answer": self.answer,
            "reference": self.reference,
            "correct": self.correct,
            "labels": self.labels,
            "scores": self.scores,
            "meta": self.meta,
        }
        d.update(self.extra)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @property
    def first_error(self) -> int:
        """0-based index of the first step labelled bad (label < 0.5), -1 when none (ProcessBench convention)."""
        if self.labels is None:
            raise ValueError(f"record {self.id!r} has no labels")
        for i, lab in enumerate(self.labels):
            if lab < 0.5:
                return i
        return -1
