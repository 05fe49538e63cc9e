"""ProcessBench metrics, matching QwenLM/ProcessBench `code/run_eval.py` exactly.

Per subset: `error_acc` is the share of erroneous samples (label != -1) whose predicted first-error index
equals the label; `correct_acc` the share of correct samples (label == -1) predicted -1; `f1` their harmonic
mean. A prediction that could not be parsed (None) never matches. The paper's average is the unweighted mean
of the subsets' F1. Accuracies are fractions here (upstream prints them x100; F1 is scale-free).

A scalar PRM predicts the first step whose score is under a threshold (-1 when none is); the threshold is
fixed or chosen on one subset (`tune_threshold`, exact: it sweeps every score at which F1 can change).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Any


def harmonic_mean(a: float | None, b: float | None) -> float | None:
    """2ab/(a+b); 0 when both are 0 (upstream divides by zero there); None when either is undefined."""
    if a is None or b is None:
        return None
    return 0.0 if a + b == 0 else 2 * a * b / (a + b)


def processbench_f1(labels: Sequence[int], predictions: Sequence[int | None]) -> dict[str, Any]:
    """{'error_acc', 'correct_acc', 'f1', 'n_error', 'n_correct'} for first-error indices (-1 = no error).

    An accuracy over an empty group (e.g. a subset with no correct samples) is None, and so is F1 then.
    """
    if len(labels) != len(predictions):
        raise ValueError(f"{len(labels)} labels but {len(predictions)} predictions")
    error_hits = [p == y for y, p in zip(labels, predictions) if y != -1]
    correct_hits = [p == -1 for y, p in zip(labels, predictions) if y == -1]
    error_acc = sum(error_hits) / len(error_hits) if error_hits else None
    correct_acc = sum(correct_hits) / len(correct_hits) if correct_hits else None
    return {
        "error_acc": error_acc,
        "correct_acc": correct_acc,
        "f1": harmonic_mean(error_acc, correct_acc),
        "n_error": len(error_hits),
        "n_correct": len(correct_hits),
    }


def average_f1(per_subset: dict[str, dict[str, Any]]) -> float | None:
    """The paper's headline number: the unweighted mean of the subsets' F1."""
    values = [m["f1"] for m in per_subset.values()]
    if not values or any(v is None for v in values):
        return None
    return sum(values) / len(values)


def first_below(scores: Sequence[float], threshold: float) -> int:
    """The predicted first error: the first step scored under `threshold`, -1 when none is."""
    for i, s in enumerate(scores):
        if s < threshold:
            return i
    return -1


def _prefix_min(scores: Sequence[float]) -> list[float]:
    out, low = [], math.inf
    for s in scores:
        low = min(low, s)
        out.append(low)
    return out


def tune_threshold(labels: Sequence[int], step_scores: Sequence[Sequence[float]]) -> tuple[float, float]:
    """The threshold with the best F1 on this set, and that F1; ties go to the threshold closest to 0.5.

    With m_i the running minimum of the scores, a correct sample is right iff t <= m_last and a sample whose
    first error is L is right iff m_L < t <= m_(L-1). F1 only changes at those end points, so evaluating
    every end point (and just above each open one) finds the exact optimum.
    """
    correct_ends: list[float] = []
    lows: list[float] = []
    highs: list[float] = []
    for y, scores in zip(labels, step_scores):
        m = _prefix_min(scores)
        if y == -1:
            correct_ends.append(m[-1] if m else math.inf)
        elif y < len(m):
            lows.append(m[y])
            highs.append(m[y - 1] if y > 0 else math.inf)
        else:  # the error lies in steps that were not scored: never predicted
            lows.append(math.inf)
            highs.append(math.inf)
    correct_ends.sort()
    lo_sorted, hi_sorted = sorted(lows), sorted(highs)
    candidates = {0.5, *correct_ends, *highs}
    candidates.update(math.nextafter(a, math.inf) for a in lows)
    candidates = {c for c in candidates if math.isfinite(c)} | {0.0}
    best: tuple[float, float] | None = None
    for t in sorted(candidates):
        err = bisect.bisect_left(lo_sorted, t) - bisect.bisect_left(hi_sorted, t)
        cor = len(correct_ends) - bisect.bisect_left(correct_ends, t)
        f1 = harmonic_mean(err / len(lows) if lows else None, cor / len(correct_ends) if correct_ends else None)
        f1 = -1.0 if f1 is None else f1
        if best is None or f1 > best[1] + 1e-12 or (abs(f1 - best[1]) <= 1e-12 and abs(t - 0.5) < abs(best[0] - 0.5)):
            best = (t, f1)
    assert best is not None
    return best
