"""Math-Shepherd: the solution follows the problem in `input`, each step closed by a ' ки' tag; `label` is
the same text with '+' (good) or '-' (bad) where the tags are."""

from __future__ import annotations

import re
from typing import Any

from prmkit.data.adapters.base import Adapter, Place, RowError, need_str, register, row_id
from prmkit.records import Record

STEP_TAG = "ки"
FIRST_STEP = "Step 1:"
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

    def convert(self, row: dict[str, Any], place: Place) -> list[Record]:
        text = need_str(row, "input")
        tagged = need_str(row, "label")
        start = text.find(FIRST_STEP)
        if start < 0:
            raise RowError(f"field 'input' has no {FIRST_STEP!r}: cannot tell the problem from the solution")
        tags = [m.start() for m in re.finditer(STEP_TAG, text) if m.start() >= start]
        if not tags:
            raise RowError(f"field 'input' has no {STEP_TAG!r} step tags")
        if len(tagged) != len(text) - len(tags) * (len(STEP_TAG) - 1):
            raise RowError("field 'label' does not mirror 'input' (it should be 'input' with each tag as + or -)")
        steps, labels = [], []
        begin = start
        for k, pos in enumerate(tags):
            mark = tagged[pos - k * (len(STEP_TAG) - 1)]
            if mark not in LABEL_VALUES:
                raise RowError(f"field 'label' has {mark!r} where step {k + 1} should be marked + or -")
            steps.append(text[begin:pos].strip())
            labels.append(LABEL_VALUES[mark])
            begin = pos + len(STEP_TAG)
        if text[begin:].strip():
            raise RowError(f"field 'input' has text after the last {STEP_TAG!r} tag")
        found = ANSWER_RE.search(steps[-1])
        meta: dict[str, Any] = {"layout": self.name}
        if row.get("task") is not None:
            meta["task"] = row["task"]
        return [
            Record(
                id=row_id(row, place, "id"),
                problem=text[:start].strip(),
                steps=steps,
                answer=found.group(1) if found else None,
                correct=labels[-1] >= 0.5,
                labels=labels,
                meta=meta,
            )
        ]
