"""Math-Shepherd: the solution follows the problem in `input`, each step closed by a ' ки' tag; `label` is
the same text with '+' (good) or '-' (bad) where the tags are.

Where the problem ends, as TRL's conversion (`examples/datasets/math_shepherd.py`) finds it: at "Step 1:", else
"step 1:", else just after the first "?". A tag inside the problem (the released set has such annotation slips,
which TRL lists by their opening words) is dropped with its label, and the problem keeps its text; the record
says so in meta["stray_tags"]. A row that still cannot be parsed is skipped and counted (`skip_bad_rows`, on by
default: one bad row of 445k must not abort a load), with one warning naming the file, the count and the first
such line; `skip_bad_rows: false` makes it an error naming the line.
"""

from __future__ import annotations

import re
from typing import Any

from prmkit.data.adapters.base import Adapter, Place, RowError, need_str, register, row_id
from prmkit.records import Record

STEP_TAG = "ки"
FIRST_STEPS = ("Step 1:", "step 1:")
LABEL_VALUES = {"+": 1.0, "-": 0.0}
ANSWER_RE = re.compile(r"The answer is:?\s*(.+?)\s*$", re.S)


@register
class MathShepherdAdapter(Adapter):
    """Problem = text before 'Step 1:'; steps keep their 'Step k:' prefix as written.

    `correct` is the last step's label: Math-Shepherd's label for a finished solution is whether its
    final answer is right.
    """

    name = "math_shepherd"
    signatures = (frozenset({"input", "label"}),)

    def __init__(self, skip_bad_rows: bool = True) -> None:
        self.skip_bad_rows = skip_bad_rows
        self.skipped: list[tuple[Place, str]] = []

    def convert(self, row: dict[str, Any], place: Place) -> list[Record]:
        try:
            return self._convert(row, place)
        except RowError as e:
            if not self.skip_bad_rows:
                raise
            self.skipped.append((place, str(e)))
            return []

    def finish(self) -> list[Record]:
        if self.skipped:
            from prmkit.console import console

            first, why = self.skipped[0]
            console.print(
                f"warning: math_shepherd layout: skipped {len(self.skipped)} row(s) that could not be "
                f"parsed (first: {first}: {why})",
                highlight=False,
                markup=False,
            )
        return []

    def _convert(self, row: dict[str, Any], place: Place) -> list[Record]:
        text = need_str(row, "input")
        tagged = need_str(row, "label")
        all_tags = [m.start() for m in re.finditer(STEP_TAG, text)]
        if not all_tags:
            raise RowError(f"field 'input' has no {STEP_TAG!r} step tags")
        if len(tagged) != len(text) - len(all_tags) * (len(STEP_TAG) - 1):
            raise RowError("field 'label' does not mirror 'input' (it should be 'input' with each tag as + or -)")
        marks = [tagged[pos - k * (len(STEP_TAG) - 1)] for k, pos in enumerate(all_tags)]
        start = solution_start(text)
        if start < 0:
            raise RowError(
                "field 'input' has no 'Step 1:', 'step 1:' or '?': cannot tell the problem from the solution"
            )
        stray = [k for k, pos in enumerate(all_tags) if pos < start]
        steps: list[str] = []
        labels: list[float] = []
        begin = start
        for k, pos in enumerate(all_tags):
            if k in stray:
                continue
            if marks[k] not in LABEL_VALUES:
                raise RowError(f"field 'label' has {marks[k]!r} where step {len(steps) + 1} should be marked + or -")
            steps.append(text[begin:pos].strip())
            labels.append(LABEL_VALUES[marks[k]])
            begin = pos + len(STEP_TAG)
        if not steps:
            raise RowError(f"field 'input' has no {STEP_TAG!r} tag after the problem")
        if text[begin:].strip():
            raise RowError(f"field 'input' has text after the last {STEP_TAG!r} tag")
        if any(not s for s in steps):
            raise RowError("field 'input' has an empty step between two tags")
        problem = text[:start]
        for pos in reversed([all_tags[k] for k in stray]):
            problem = problem[:pos] + problem[pos + len(STEP_TAG) :]
        found = ANSWER_RE.search(steps[-1])
        meta: dict[str, Any] = {"layout": self.name}
        if row.get("task") is not None:
            meta["task"] = row["task"]
        if stray:
            meta["stray_tags"] = len(stray)
        return [
            Record(
                id=row_id(row, place, "id"),
                problem=problem.strip(),
                steps=steps,
                answer=found.group(1) if found else None,
                correct=labels[-1] >= 0.5,
                labels=labels,
                meta=meta,
            )
        ]


def solution_start(text: str) -> int:
    """Where the solution begins: "Step 1:", else "step 1:", else just after the first "?" (TRL's order); -1."""
    for marker in FIRST_STEPS:
        at = text.find(marker)
        if at >= 0:
            return at
    at = text.find("?")
    return at + 1 if at >= 0 else -1
