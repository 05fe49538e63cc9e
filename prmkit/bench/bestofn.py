"""Best-of-N curves from ONE large draw: for each N, seeded random subsets of N of each problem's samples.

Methods per subset: PRM selection (the sample with the highest aggregate score; ties to the earlier sample),
PRM-weighted majority vote (answer clusters weighted by one aggregate), plain majority vote (ties to the
answer seen first, as prmkit.grading.voting), and pass@N (any sample correct: the oracle).
Answers are clustered once per problem with the same equivalence test as majority voting, so subsets only
count cluster ids.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from prmkit.grading import is_equivalent


@dataclass
class Candidate:
    cluster: int | None
    """Index of the sample's answer cluster within its problem; None when it gave no answer."""
    correct: bool
    aggregates: dict[str, float | None]


@dataclass
class Problem:
    id: str
    candidates: list[Candidate]
    cluster_correct: list[bool]


def build_problem(pid: str, samples: Sequence[dict[str, Any]]) -> Problem:
    """Cluster the answers (equivalent answers together) and mark which clusters are right.

    Each sample is a dict with answer, correct, reference and aggregates.
    """
    reps: list[str] = []
    correct: list[bool] = []
    candidates = []
    for s in samples:
        answer = s.get("answer")
        cluster = None
        if answer is not None:
            for k, rep in enumerate(reps):
                if rep == answer or is_equivalent(answer, rep):
                    cluster = k
                    break
            else:
                reps.append(answer)
                correct.append(sample_correct(s))
                cluster = len(reps) - 1
        candidates.append(Candidate(cluster, sample_correct(s), dict(s.get("aggregates") or {})))
    return Problem(pid, candidates, correct)


def sample_correct(sample: dict[str, Any]) -> bool:
    """A sample's verdict: its `correct` field, else its answer graded against its `reference`.

    Data from elsewhere may carry a reference but `correct: null`; PRM selection and pass@N must grade it as
    the answer clusters do. A sample with no extracted answer is wrong, but it stays a candidate: PRM selection
    may pick it (and is then wrong), as OpenAI's prm800k/eval/eval.py grades every selected sample whether
    or not an answer was found; votes skip it, having no answer to count."""
    ok = sample.get("correct")
    if ok is None and sample.get("reference") is not None and sample.get("answer") is not None:
        ok = is_equivalent(sample["answer"], sample["reference"])
    return bool(ok)


def _vote(problem: Problem, chosen: list[Candidate], weight: str | None) -> bool:
    totals: dict[int, float] = {}
    for c in chosen:  # insertion order = first seen, so max() keeps the earlier cluster on ties
        if c.cluster is None:
            continue
        w = 1.0 if weight is None else (c.aggregates.get(weight) or 0.0)
        totals[c.cluster] = totals.get(c.cluster, 0.0) + w
    if not totals:
        return False
    best = max(totals, key=lambda k: totals[k])
    return problem.cluster_correct[best]


def _select(chosen: list[Candidate], aggregate: str) -> bool:
    best, best_score = None, float("-inf")
    for c in chosen:
        value = c.aggregates.get(aggregate)
        s = float("-inf") if value is None else value
        if best is None or s > best_score:
            best, best_score = c, s
    return bool(best and best.correct)


def evaluate_subset(
    problem: Problem, chosen: list[Candidate], aggregates: Sequence[str], weighted: str
) -> dict[str, bool]:
    out = {f"prm_{a}": _select(chosen, a) for a in aggregates}
    out[f"prm_weighted_vote_{weighted}"] = _vote(problem, chosen, weighted)
    out["majority_vote"] = _vote(problem, chosen, None)
    out["pass@N"] = any(c.correct for c in chosen)
    return out


def default_ns(n: int) -> list[int]:
    """1, 2, 4, ... up to n (n itself last even when not a power of two)."""
    ns, k = [], 1
    while k <= n:
        ns.append(k)
        k *= 2
    if ns[-1] != n:
        ns.append(n)
    return ns


def per_problem_curves(
    problems: Sequence[Problem], ns: Sequence[int], trials: int, seed: int, aggregates: Sequence[str], weighted: str
) -> dict[int, dict[str, list[float]]]:
    """Each problem's accuracy per N and method, averaged over `trials` seeded subsets (one when N = all).

    Kept per problem so that methods can be compared paired, problem by problem, on the same subsets."""
    out: dict[int, dict[str, list[float]]] = {}
    for n in ns:
        rng = random.Random(seed * 1_000_003 + n)
        rows: dict[str, list[float]] = {}
        for p in problems:
            full = len(p.candidates)
            reps = 1 if n >= full else trials
            sums: dict[str, float] = {}
            for _ in range(reps):
                chosen = p.candidates if n >= full else [p.candidates[i] for i in sorted(rng.sample(range(full), n))]
                for method, hit in evaluate_subset(p, chosen, aggregates, weighted).items():
                    sums[method] = sums.get(method, 0.0) + hit / reps
            for method, v in sums.items():
                rows.setdefault(method, []).append(v)
        out[n] = rows
    return out


def curves(
    problems: Sequence[Problem], ns: Sequence[int], trials: int, seed: int, aggregates: Sequence[str], weighted: str
) -> dict[int, dict[str, float]]:
    """Accuracy per N and method, averaged over problems and over `trials` seeded subsets (one when N = all)."""
    per = per_problem_curves(problems, ns, trials, seed, aggregates, weighted)
    return {n: {m: sum(v) / len(v) for m, v in rows.items()} for n, rows in per.items()}


Z95 = 1.959964


def paired_interval(method: Sequence[float], baseline: Sequence[float]) -> dict[str, float]:
    """Mean difference of two methods over the same problems with its paired 95% interval (normal approximation:
    mean +- 1.96 * sd(d) / sqrt(P), d the per-problem differences). Pairing removes the problems' difficulty from
    the noise, so the interval is far narrower than one from two independent accuracies."""
    d = [a - b for a, b in zip(method, baseline)]
    n = len(d)
    mean = sum(d) / n
    var = sum((x - mean) ** 2 for x in d) / (n - 1) if n > 1 else float("inf")
    half = Z95 * math.sqrt(var / n)
    return {"diff": mean, "ci95_low": mean - half, "ci95_high": mean + half, "problems": n}


def paired_against(
    per: dict[int, dict[str, list[float]]], baseline: str = "majority_vote"
) -> dict[str, dict[str, dict[str, float]]]:
    """For each N and each PRM-guided method (prm_*), its paired difference from `baseline`."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for n, rows in per.items():
        if baseline not in rows:
            continue
        out[str(n)] = {m: paired_interval(v, rows[baseline]) for m, v in rows.items() if m.startswith("prm_")}
    return out


def _score_or_lowest(value: float | None) -> float:
    """An unscored sample ranks below every scored one."""
    return float("-inf") if value is None else value


def within_problem_auc(problems: Sequence[Problem], aggregate_name: str) -> dict[str, float | int | None]:
    """How often a right sample outscores a wrong sample of the same problem (ties count half), pooled over the
    problems that have both: the ranking that best-of-N needs, free of problem difficulty."""
    wins = pairs = 0.0
    used = 0
    for p in problems:
        right = [_score_or_lowest(c.aggregates.get(aggregate_name)) for c in p.candidates if c.correct]
        wrong = [_score_or_lowest(c.aggregates.get(aggregate_name)) for c in p.candidates if not c.correct]
        if not right or not wrong:
            continue
        used += 1
        for a in right:
            for b in wrong:
                pairs += 1
                wins += 1.0 if a > b else 0.5 if a == b else 0.0
    return {"auc": wins / pairs if pairs else None, "problems": used}
