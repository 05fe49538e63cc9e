"""PRMBench: a correct solution (`original_process`) and a modified one with errors planted at
`error_steps` (1-based step numbers; more than one, and not necessarily the first, may be wrong)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from prmkit.data.adapters.base import Adapter, Place, RowError, need, need_str, need_str_list, register
from prmkit.records import Record


def _error_steps(row: dict[str, Any]) -> list[int]:
    value = need(row, "error_steps")
    if not isinstance(value, list) or not all(isinstance(e, int) and not isinstance(e, bool) for e in value):
        raise RowError(f"field 'error_steps' must be a list of 1-based step numbers, got {value!r}")
    return value


@register
class PrmBenchAdapter(Adapter):
    """One record for the modified process: label 0 at each error step, 1 elsewhere.

    Ids follow PRMBench's evaluator: '<classification>_<idx>' (and 'correct_<idx>' for originals).
    The same idx/classification can occur twice (alternative solutions in the multi-solution file, or the
    same sample in two files read together); later ones get '-2', '-3', ... so ids stay unique.
    Upstream lists some error steps beyond the last step; those cannot be labelled and are kept in
    meta["error_steps_out_of_range"] (PRMBench's own evaluator ignores them likewise).
    include_original=True also yields each original process once per idx, every step labelled 1.
    """

    name = "prmbench"
    signatures = (frozenset({"original_process", "modified_process", "error_steps"}),)

    def __init__(self, include_original: bool = False) -> None:
        self.include_original = include_original
        self._seen: Counter[str] = Counter()

    def _unique(self, rid: str) -> str:
        self._seen[rid] += 1
        n = self._seen[rid]
        return rid if n == 1 else f"{rid}-{n}"

    def convert(self, row: dict[str, Any], place: Place) -> list[Record]:
        steps = need_str_list(row, "modified_process")
        errors = _error_steps(row)
        idx = str(row.get("idx") or place.fallback_id)
        classification = str(row.get("classification") or "unclassified")
        wrong = {e for e in errors if 1 <= e <= len(steps)}
        meta: dict[str, Any] = {
            "layout": self.name,
            "idx": idx,
            "classification": classification,
            "error_steps": errors,
        }
        outside = [e for e in errors if e not in wrong]
        if outside:
            meta["error_steps_out_of_range"] = outside
        for key in ("modified_steps", "reason"):
            if row.get(key) not in (None, ""):
                meta[key] = row[key]
        reference = row.get("ground_truth")
        records = [
            Record(
                id=self._unique(f"{classification}_{idx}"),
                problem=self._question(row, "modified_question"),
                steps=steps,
                reference=None if reference is None else str(reference),
                labels=[0.0 if i + 1 in wrong else 1.0 for i in range(len(steps))],
                meta=meta,
            )
        ]
        original_id = f"correct_{idx}"
        if self.include_original and original_id not in self._seen:
            self._seen[original_id] += 1
            original = need_str_list(row, "original_process")
            records.append(
                Record(
                    id=original_id,
                    problem=self._question(row, "original_question"),
                    steps=original,
                    reference=None if reference is None else str(reference),
                    labels=[1.0] * len(original),
                    meta={"layout": self.name, "idx": idx, "classification": "correct"},
                )
            )
        return records

    @staticmethod
    def _question(row: dict[str, Any], key: str) -> str:
        """The modified (or original) question; older files only have 'question'."""
        return need_str(row, key if key in row else "question")
