"""Benchmarks that mark only the first wrong step of a solution: ProcessBench and BIG-Bench Mistake.

Labels: 1 before the first error, 0 from it on; a solution that has erred stays wrong, and these sets
say nothing about later steps. The index itself is kept in meta["first_error"] (-1 when none).
"""

from __future__ import annotations

from typing import Any

from prmkit.data.adapters.base import (
    Adapter,
    Place,
    RowError,
    first_error_labels,
    need,
    need_int,
    need_str,
    need_str_list,
    register,
    row_id,
)
from prmkit.records import Record


def _checked_index(index: int, n_steps: int, key: str) -> int:
    if not -1 <= index < n_steps:
        raise RowError(f"field {key!r} is {index}, outside -1..{n_steps - 1} for {n_steps} steps")
    return index


@register
class ProcessBenchAdapter(Adapter):
    """ProcessBench: {id, generator, problem, steps, label (0-based first error, -1 none), final_answer_correct}."""

    name = "processbench"
    signatures = (frozenset({"id", "problem", "steps", "label", "final_answer_correct"}),)

    def convert(self, row: dict[str, Any], place: Place) -> list[Record]:
        steps = need_str_list(row, "steps")
        label = need_int(row, "label")
        assert label is not None  # need_int without allow_null never returns None
        first = _checked_index(label, len(steps), "label")
        correct = need(row, "final_answer_correct")
        if not isinstance(correct, bool):
            raise RowError(f"field 'final_answer_correct' must be true or false, got {correct!r}")
        meta: dict[str, Any] = {"layout": self.name, "first_error": first}
        if row.get("generator") is not None:
            meta["generator"] = row["generator"]
        return [
            Record(
                id=str(need(row, "id")),
                problem=need_str(row, "problem"),
                steps=steps,
                correct=correct,
                labels=first_error_labels(len(steps), first),
                meta=meta,
            )
        ]


@register
class BigBenchMistakeAdapter(Adapter):
    """BIG-Bench Mistake: {input, steps, mistake_index (0-based, null = none), answer, target}.

    `correct` compares the answer with the target as text: the set's answers are exact strings
    (and it does contain solutions with no marked mistake but a wrong answer, and the reverse).
    """

    name = "bigbench_mistake"
    signatures = (frozenset({"input", "steps", "mistake_index"}),)

    def convert(self, row: dict[str, Any], place: Place) -> list[Record]:
        steps = need_str_list(row, "steps")
        index = need_int(row, "mistake_index", allow_null=True)
        first = -1 if index is None else _checked_index(index, len(steps), "mistake_index")
        answer = row.get("answer")
        target = row.get("target")
        answer = None if answer is None else str(answer)
        target = None if target is None else str(target)
        correct = None if answer is None or target is None else answer.strip() == target.strip()
        return [
            Record(
                id=row_id(row, place, "id"),
                problem=need_str(row, "input"),
                steps=steps,
                answer=answer,
                reference=target,
                correct=correct,
                labels=first_error_labels(len(steps), first),
                meta={"layout": self.name, "first_error": first},
            )
        ]
