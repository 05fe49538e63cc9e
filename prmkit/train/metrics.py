"""Held-out PRM metrics: step-level accuracy and F1, and ProcessBench's first-error F1.

Definitions (match `prmkit bench`): a step is predicted bad when its score is under `threshold`;
step labels are binarised at 0.5 (soft MC labels included). Step F1 is the F1 of finding BAD steps
(the minority class a PRM exists to catch). First-error F1 follows ProcessBench: the predicted first
error is the first step scored under the threshold (-1 when none); accuracy on erroneous solutions
(prediction equals the true first error) and on correct ones (prediction -1), and their harmonic mean.
"""

from __future__ import annotations

from collections.abc import Sequence


def first_below(values: Sequence[float], threshold: float) -> int:
    """Index of the first value under `threshold`, -1 when none."""
    for i, v in enumerate(values):
        if v < threshold:
            return i
    return -1


def harmonic_mean(a: float | None, b: float | None) -> float | None:
    if a is None or b is None:
        return None
    return 0.0 if a + b == 0 else 2 * a * b / (a + b)


def step_metrics(
    scores: list[list[float]], labels: list[list[float]], threshold: float = 0.5
) -> dict[str, float | None]:
    """Accuracy, and precision/recall/F1 of the bad-step class, over all scored steps."""
    tp = fp = fn = tn = 0
    for s_row, l_row in zip(scores, labels):
        for s, lab in zip(s_row, l_row):
            pred_bad, true_bad = s < threshold, lab < 0.5
            tp += pred_bad and true_bad
            fp += pred_bad and not true_bad
            fn += true_bad and not pred_bad
            tn += not pred_bad and not true_bad
    n = tp + fp + fn + tn
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None
    return {
        "step_accuracy": (tp + tn) / n if n else None,
        "step_precision": precision,
        "step_recall": recall,
        "step_f1": f1,
        "steps_scored": n,
    }


def first_error_metrics(
    scores: list[list[float]], labels: list[list[float]], threshold: float = 0.5
) -> dict[str, float | None]:
    """ProcessBench's error accuracy, correct accuracy and their harmonic mean (first-error F1)."""
    err_hits = err_n = ok_hits = ok_n = 0
    for s_row, l_row in zip(scores, labels):
        truth = first_below(l_row, 0.5)
        pred = first_below(s_row, threshold)
        if truth >= 0:
            err_n += 1
            err_hits += pred == truth
        else:
            ok_n += 1
            ok_hits += pred == -1
    error_acc = err_hits / err_n if err_n else None
    correct_acc = ok_hits / ok_n if ok_n else None
    return {
        "error_accuracy": error_acc,
        "correct_accuracy": correct_acc,
        "first_error_f1": harmonic_mean(error_acc, correct_acc),
    }


def prm_metrics(
    scores: list[list[float]], labels: list[list[float]], threshold: float = 0.5
) -> dict[str, float | None]:
    """Both families of metrics, over records whose every step was scored."""
    return {**step_metrics(scores, labels, threshold), **first_error_metrics(scores, labels, threshold)}
