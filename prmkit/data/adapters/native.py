"""Layouts that already are step-labelled solutions: prmkit's own records and TRL's stepwise PRM data."""

from __future__ import annotations

import math
from typing import Any

from prmkit.data.adapters.base import Adapter, Place, RowError, need, need_str_list, register, row_id
from prmkit.records import Record


@register
class PrmkitAdapter(Adapter):
    """prmkit JSONL records, read back as written (unknown fields stay in `extra`)."""

    name = "prmkit"
    signatures = (frozenset({"id", "problem", "steps"}), frozenset({"id", "problem"}))  # problems-only files too

    def convert(self, row: dict[str, Any], place: Place) -> list[Record]:
        try:
            return [Record.from_dict(row)]
        except (ValueError, TypeError) as e:
            raise RowError(str(e)) from None


def soft_label(value: Any, key: str, index: int) -> float:
    """A step label as a float in [0, 1]: bools become 0/1, floats stay floats (MC soft labels)."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and not math.isnan(value) and 0.0 <= value <= 1.0:
        return float(value)
    raise RowError(f"field {key!r} item {index} must be a bool or a number in [0, 1], got {value!r}")


@register
class TrlAdapter(Adapter):
    """TRL's stepwise-supervision layout: {prompt, completions (the steps), labels (bool or float per step)}."""

    name = "trl"
    signatures = (frozenset({"prompt", "completions", "labels"}),)

    def convert(self, row: dict[str, Any], place: Place) -> list[Record]:
        prompt = need(row, "prompt")
        if not isinstance(prompt, str):
            raise RowError("field 'prompt' must be a string (conversational prompts are not a stepwise PRM layout)")
        steps = need_str_list(row, "completions")
        raw = need(row, "labels")
        if not isinstance(raw, (list, tuple)) or len(raw) != len(steps):
            n = len(raw) if isinstance(raw, (list, tuple)) else type(raw).__name__
            raise RowError(f"field 'labels' must be a list with one label per completion ({len(steps)}), got {n}")
        labels = [soft_label(v, "labels", i) for i, v in enumerate(raw)]
        return [
            Record(
                id=row_id(row, place, "id"),
                problem=prompt,
                steps=steps,
                labels=labels,
                meta={"layout": self.name},
            )
        ]
