"""Label audit: how right automatic step labels are, where the truth is known.

The truth comes from an embedded world's exact checker (`meta.true_labels`, written by `prmkit sample`
with `task:`) or a data set with human first-error labels (`meta.first_error` and `labels`). Reported:
step-label accuracy, and first-error agreement in ProcessBench's terms (error_acc, correct_acc, F1).
"""

from __future__ import annotations

from typing import Any

from prmkit.annotate.methods import labels_from_first_error
from prmkit.bench import processbench_f1
from prmkit.records import Record


def true_labels(record: Record) -> list[float] | None:
    """The known per-step truth: an exact checker's labels, or prefix labels from a human first-error index."""
    truth = record.meta.get("true_labels")
    if truth is not None and len(truth) == len(record.steps):
        return [float(x) for x in truth]
    first = record.meta.get("first_error")
    if isinstance(first, int) and -1 <= first < len(record.steps):
        return labels_from_first_error(len(record.steps), first)
    return None


def first_error_of(labels: list[float]) -> int:
    return next((i for i, x in enumerate(labels) if x < 0.5), -1)


def audit(pairs: list[tuple[Record, list[float]]]) -> dict[str, Any] | None:
    """Accuracy of predicted labels against the truth over (record, predicted labels) pairs with a known truth."""
    known = [(truth, pred) for rec, pred in pairs if (truth := true_labels(rec)) is not None]
    if not known:
        return None
    steps = sum(len(t) for t, _ in known)
    hits = sum((p >= 0.5) == (y >= 0.5) for truth, pred in known for y, p in zip(truth, pred))
    fe = processbench_f1([first_error_of(t) for t, _ in known], [first_error_of(p) for _, p in known])
    return {
        "solutions": len(known),
        "step_accuracy": hits / steps if steps else None,
        "first_error_f1": fe["f1"],
        "first_error_error_acc": fe["error_acc"],
        "first_error_correct_acc": fe["correct_acc"],
    }
