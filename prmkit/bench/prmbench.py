"""PRMBench metrics, matching ssmisya/PRMBench `mr_eval/tasks/prmtest_classified/task.py` and the PRMScore of
`mr_visualize/eval_res_view/form_latex_strs.ipynb`.

A step is predicted "valid" when its score is > threshold (upstream: `item > validity_threshold`, 0.5). Per
sample, with the 1-based `error_steps` as the wrong steps and only the steps that have a prediction counted:
TP = right step predicted valid, FN = right step predicted invalid, TN = wrong step predicted invalid,
FP = wrong step predicted valid. Summed per error class (and over all classes except the unmodified
"correct" originals for the total), then precision/recall/F1 of the valid class, and "negative" ones of the
invalid class (precision TN/(TN+FN), recall TN/(TN+FP)).
PRMScore = 0.5 * F1 + 0.5 * negative F1; for multi_solutions (no wrong steps) it is F1 alone.
Also per class: step accuracies (right / wrong / all steps), first-error accuracy, and `similarity`, the mean
|share of steps predicted valid on the modified - on the original| (upstream skips pairs whose original
share is 0, a quirk kept). Upstream writes -1 for an undefined ratio and computes F1 from the -1s; here an
undefined ratio is None, an F1 whose class was never predicted is 0 (what upstream's arithmetic gives too),
and an F1 whose class never occurs is None (upstream: a meaningless number), and so is a PRMScore built on it.

Samples are built as upstream does: one per `<classification>_<idx>` (first occurrence wins) and one
`correct_<idx>` original per idx seen in the `redundency` class.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

CORRECT = "correct"
F1_ONLY = ("multi_solutions",)
CORRECT_SOURCE_CLASS = "redundency"
STEP_METRICS = ("correct_step_acc", "wrong_step_acc", "total_step_acc", "first_error_acc")


@dataclass
class Sample:
    id: str
    classification: str
    question: str
    steps: list[str]
    error_steps: list[int]
    """1-based, as in the data."""


def samples_from_rows(rows: Iterable[dict[str, Any]]) -> list[Sample]:
    """Upstream's load_data_function: modified samples per class, plus originals from the redundency class."""
    out: list[Sample] = []
    seen: set[str] = set()
    for row in rows:
        idx, cls = row["idx"], row["classification"]
        if cls == CORRECT_SOURCE_CLASS and f"correct_{idx}" not in seen:
            seen.add(f"correct_{idx}")
            out.append(Sample(f"correct_{idx}", CORRECT, row["original_question"], list(row["original_process"]), []))
        sid = f"{cls}_{idx}"
        if sid not in seen:
            seen.add(sid)
            question = str(row.get("modified_question", row.get("question")))
            out.append(Sample(sid, cls, question, list(row["modified_process"]), list(row["error_steps"])))
    return out


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0
    lists: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in (*STEP_METRICS, "similarity")})

    def add(self, other: StepResult) -> None:
        self.tp, self.fp, self.tn, self.fn = (
            self.tp + other.tp,
            self.fp + other.fp,
            self.tn + other.tn,
            self.fn + other.fn,
        )
        for m in STEP_METRICS:
            self.lists[m].extend(getattr(other, m))


@dataclass
class StepResult:
    tp: int
    fp: int
    tn: int
    fn: int
    correct_step_acc: list[int]
    wrong_step_acc: list[int]
    total_step_acc: list[int]
    first_error_acc: list[int]
    response_acc: float | None
    """Share of steps predicted valid (upstream's model_response_acc)."""


def eval_sample(error_steps: Sequence[int], valid: Sequence[bool]) -> StepResult:
    """Upstream's eval_on_hallucination_step for one sample's predicted validity labels."""
    wrong = {e - 1 for e in error_steps}
    first = min(wrong) if wrong else -1
    r = StepResult(0, 0, 0, 0, [], [], [], [], None)
    for i, ok in enumerate(valid):
        if i == first:
            r.first_error_acc.append(int(not ok))
        if i in wrong:
            r.wrong_step_acc.append(int(not ok))
            r.total_step_acc.append(int(not ok))
            r.fp += ok
            r.tn += not ok
        else:
            r.correct_step_acc.append(int(ok))
            r.total_step_acc.append(int(ok))
            r.tp += ok
            r.fn += not ok
    r.response_acc = sum(valid) / len(valid) if valid else None
    return r


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


def _f1(p: float | None, r: float | None) -> float | None:
    """F1; 0 when the class was never predicted (precision undefined, recall 0: upstream's value too);
    None when the class never occurs (recall undefined)."""
    if r is None:
        return None
    if p is None:
        return 0.0
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarize(counts: Counts, classification: str | None = None) -> dict[str, Any]:
    precision, recall = _ratio(counts.tp, counts.tp + counts.fp), _ratio(counts.tp, counts.tp + counts.fn)
    neg_p, neg_r = _ratio(counts.tn, counts.tn + counts.fn), _ratio(counts.tn, counts.tn + counts.fp)
    f1, neg_f1 = _f1(precision, recall), _f1(neg_p, neg_r)
    if classification in F1_ONLY:
        prm_score = f1
    else:
        prm_score = None if f1 is None or neg_f1 is None else 0.5 * f1 + 0.5 * neg_f1
    out: dict[str, Any] = {
        "prm_score": prm_score,
        "f1": f1,
        "negative_f1": neg_f1,
        "precision": precision,
        "recall": recall,
        "negative_precision": neg_p,
        "negative_recall": neg_r,
        "tp": counts.tp,
        "fp": counts.fp,
        "tn": counts.tn,
        "fn": counts.fn,
    }
    for m in (*STEP_METRICS, "similarity"):
        out[m] = _mean(counts.lists[m])
    return out


def step_validity(scores: Sequence[float], threshold: float, rule: str = "score") -> list[bool]:
    """Which steps are judged valid. `score`: score > threshold (upstream's `item > validity_threshold`).
    `difference` (upstream's Skywork wrapper): [s0, s1 - s0, s2 - s1, ...] > threshold."""
    values = [float(x) for x in scores]
    if rule == "difference":
        values = values[:1] + [b - a for a, b in zip(values, values[1:])]
    return [v > threshold for v in values]


def prmbench_metrics(
    samples: Sequence[Sample], step_scores: Mapping[str, Sequence[float]], threshold: float = 0.5, rule: str = "score"
) -> dict[str, Any]:
    """{'overall': {...}, 'classes': {class: {...}}, 'samples': n} from each sample id's step scores.

    Samples without scores are left out (upstream's "validity" rate is reported as `scored_share`).
    """
    per_class: dict[str, Counts] = {}
    total = Counts()
    original_share: dict[str, float | None] = {}
    scored = 0
    modified = 0
    ordered = sorted(samples, key=lambda s: s.classification != CORRECT)  # originals first, as upstream
    for s in ordered:
        counts = per_class.setdefault(s.classification, Counts())
        modified += s.classification != CORRECT
        if s.id not in step_scores:
            continue
        valid = step_validity(step_scores[s.id], threshold, rule)
        r = eval_sample(s.error_steps, valid)
        counts.add(r)
        if s.classification == CORRECT:
            original_share[s.id] = r.response_acc
            continue
        scored += 1
        total.add(r)
        base = original_share.get("correct_" + s.id[len(s.classification) + 1 :])
        if base and r.response_acc is not None:  # upstream: `if correct_item_acc and item_acc != -1`
            diff = abs(r.response_acc - base)
            total.lists["similarity"].append(diff)
            counts.lists["similarity"].append(diff)
    classes = {name: summarize(c, name) for name, c in sorted(per_class.items())}
    return {
        "overall": summarize(total),
        "classes": classes,
        "samples": len(samples),
        "scored_share": scored / modified if modified else None,
        "threshold": threshold,
        "step_rule": rule,
    }
