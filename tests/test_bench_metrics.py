"""Benchmark metrics against re-statements of the upstream evaluation code (no models involved)."""

from __future__ import annotations

import random

import pytest

from prmkit.bench import average_f1, first_below, processbench_f1, tune_threshold
from prmkit.bench.bestofn import Candidate, Problem, curves, default_ns
from prmkit.bench.prmbench import eval_sample, prmbench_metrics, samples_from_rows


def upstream_processbench(labels, preds):
    """QwenLM/ProcessBench code/run_eval.py, restated: percent accuracies, F1 = 2 a1 a2 / (a1 + a2)."""
    data1 = [p == y for y, p in zip(labels, preds) if y != -1]
    data2 = [p == y for y, p in zip(labels, preds) if y == -1]
    acc1 = sum(data1) / len(data1) * 100
    acc2 = sum(data2) / len(data2) * 100
    return acc1, acc2, 2 * acc1 * acc2 / (acc1 + acc2)


def test_processbench_f1_matches_upstream_on_random_sets():
    rng = random.Random(0)
    for _ in range(50):
        labels = [rng.choice([-1, -1, 0, 1, 2, 3]) for _ in range(40)]
        preds = [rng.choice([-1, 0, 1, 2, None]) for _ in range(40)]
        got = processbench_f1(labels, preds)
        acc1, acc2, f1 = upstream_processbench(labels, preds)
        if acc1 + acc2 == 0:
            continue
        assert got["error_acc"] * 100 == pytest.approx(acc1)
        assert got["correct_acc"] * 100 == pytest.approx(acc2)
        assert got["f1"] * 100 == pytest.approx(f1)


def test_processbench_f1_small_cases():
    m = processbench_f1([2, 0, -1, -1], [2, 1, -1, 3])
    assert (m["error_acc"], m["correct_acc"], m["f1"]) == (0.5, 0.5, 0.5)
    assert m["n_error"] == 2 and m["n_correct"] == 2
    assert processbench_f1([1, -1], [0, 0])["f1"] == 0.0  # both 0: 0, not a division by zero
    assert processbench_f1([1, 2], [1, 2])["correct_acc"] is None  # no correct samples: undefined
    assert processbench_f1([1, -1], [None, -1])["error_acc"] == 0.0  # unparsed prediction never matches
    assert average_f1({"a": {"f1": 0.2}, "b": {"f1": 0.6}}) == pytest.approx(0.4)  # unweighted mean
    with pytest.raises(ValueError):
        processbench_f1([1], [])


def test_first_below_and_exact_threshold_tuning():
    assert first_below([0.9, 0.4, 0.2], 0.5) == 1
    assert first_below([0.9, 0.8], 0.5) == -1
    assert first_below([0.5], 0.5) == -1  # a score equal to the threshold is not an error
    rng = random.Random(1)
    labels, scores = [], []
    for _ in range(60):
        n = rng.randint(1, 6)
        labels.append(rng.choice([-1, *range(n)]))
        scores.append([round(rng.random(), 2) for _ in range(n)])
    t, f1 = tune_threshold(labels, scores)
    assert processbench_f1(labels, [first_below(s, t) for s in scores])["f1"] == pytest.approx(f1)
    grid = [k / 1000 for k in range(0, 1002)]  # brute force: no threshold does better
    brute = max(processbench_f1(labels, [first_below(s, g) for s in scores])["f1"] for g in grid)
    assert f1 >= brute - 1e-12


def test_prmbench_sample_counts_follow_upstream():
    # upstream eval_on_hallucination_step: error_steps 1-based; labels True = predicted valid
    r = eval_sample([2, 4], [True, False, True, True])
    assert (r.tp, r.fn, r.tn, r.fp) == (2, 0, 1, 1)
    assert r.first_error_acc == [1] and r.wrong_step_acc == [1, 0] and r.correct_step_acc == [1, 1]
    assert r.response_acc == 0.75
    short = eval_sample([5], [True, False])  # steps past the predictions are not counted
    assert (short.tp, short.fn, short.first_error_acc) == (1, 1, [])


def _row(idx, cls, n, errors):
    return {
        "idx": idx,
        "classification": cls,
        "original_question": "q",
        "modified_question": "q'",
        "original_process": [f"o{i}" for i in range(n)],
        "modified_process": [f"m{i}" for i in range(n)],
        "error_steps": errors,
    }


def test_prmbench_metrics_prmscore_and_similarity():
    rows = [
        _row("a", "redundency", 3, [2]),
        _row("a", "circular", 3, [3]),
        _row("a", "circular", 3, [1]),
        _row("b", "multi_solutions", 2, []),
    ]
    samples = samples_from_rows(rows)
    assert [s.id for s in samples] == ["correct_a", "redundency_a", "circular_a", "multi_solutions_b"]
    scores = {
        "correct_a": [0.9, 0.9, 0.2],
        "redundency_a": [0.9, 0.1, 0.9],
        "circular_a": [0.9, 0.9, 0.9],
        "multi_solutions_b": [0.8, 0.3],
    }
    m = prmbench_metrics(samples, scores)
    red = m["classes"]["redundency"]
    assert (red["tp"], red["tn"], red["fp"], red["fn"]) == (2, 1, 0, 0)
    assert red["prm_score"] == pytest.approx(1.0)
    circ = m["classes"]["circular"]  # TP 2, FP 1: F1 = 0.8; no step flagged: negative F1 0 (as upstream)
    assert circ["f1"] == pytest.approx(0.8) and circ["negative_f1"] == 0.0 and circ["prm_score"] == pytest.approx(0.4)
    assert m["classes"]["correct"]["negative_f1"] is None  # no wrong step at all: undefined
    multi = m["classes"]["multi_solutions"]  # F1 alone: P = 1, R = 0.5
    assert multi["prm_score"] == pytest.approx(2 / 3)
    over = m["overall"]  # TP 5, FP 1, TN 1, FN 1 (the originals excluded)
    p, r, np_, nr = 5 / 6, 5 / 6, 1 / 2, 1 / 2
    want = 0.5 * (2 * p * r / (p + r)) + 0.5 * (2 * np_ * nr / (np_ + nr))
    assert over["prm_score"] == pytest.approx(want)
    # similarity: |share valid on modified - on original| = |2/3 - 2/3| and |1 - 2/3|
    assert over["similarity"] == pytest.approx((0 + 1 / 3) / 2)


def _problem(correct_flags, clusters, agg, cluster_correct):
    cands = [
        Candidate(c, ok, {"min": a, "last": a, "prod": a, "mean": a}) for ok, c, a in zip(correct_flags, clusters, agg)
    ]
    return Problem("p", cands, cluster_correct)


def test_bestofn_curves_methods():
    # cluster 0 is the right answer; the PRM prefers sample 2 (wrong), majority is cluster 1 (wrong)
    p = _problem([True, False, False, False], [0, 1, 1, 1], [0.5, 0.1, 0.9, 0.1], [True, False])
    out = curves([p], [4], trials=3, seed=0, aggregates=["min"], weighted="min")[4]
    assert out["pass@N"] == 1.0 and out["majority_vote"] == 0.0 and out["prm_min"] == 0.0
    assert out["prm_weighted_vote_min"] == 0.0  # 1.1 for cluster 1 against 0.5
    one = curves([p], [1], trials=400, seed=0, aggregates=["min"], weighted="min")[1]
    assert one["pass@N"] == pytest.approx(0.25, abs=0.07)  # N=1 is the mean accuracy
    assert one["prm_min"] == one["pass@N"] == one["majority_vote"]
    assert default_ns(8) == [1, 2, 4, 8] and default_ns(6) == [1, 2, 4, 6]
    again = curves([p], [2], trials=5, seed=3, aggregates=["min"], weighted="min")
    assert again == curves([p], [2], trials=5, seed=3, aggregates=["min"], weighted="min")  # seeded


def test_bestofn_voting_agrees_with_grading_voting():
    """The clustered vote used for speed picks what prmkit.grading.voting.majority_answer picks."""
    from prmkit.bench.bestofn import _vote, build_problem
    from prmkit.grading import is_equivalent
    from prmkit.grading.voting import majority_answer

    rng = random.Random(2)
    pool = ["1/2", "0.5", "3", "3.0", "7", None]
    for _ in range(40):
        samples = [
            {"answer": rng.choice(pool), "reference": "0.5", "correct": None, "aggregates": {"last": rng.random()}}
            for _ in range(6)
        ]
        for s in samples:
            s["correct"] = s["answer"] is not None and is_equivalent(s["answer"], "0.5")
        problem = build_problem("p", samples)
        voted = majority_answer([s["answer"] for s in samples])
        assert _vote(problem, problem.candidates, None) == (voted is not None and is_equivalent(voted, "0.5"))
        weights = [s["aggregates"]["last"] for s in samples]
        wvoted = majority_answer([s["answer"] for s in samples], weights)
        assert _vote(problem, problem.candidates, "last") == (wvoted is not None and is_equivalent(wvoted, "0.5"))


def test_paired_interval_is_the_per_problem_difference():
    from prmkit.bench.bestofn import paired_interval

    a = [1.0, 1.0, 0.0, 1.0, 0.5]
    b = [0.0, 1.0, 0.0, 0.0, 0.5]
    p = paired_interval(a, b)
    d = [1.0, 0.0, 0.0, 1.0, 0.0]
    mean = sum(d) / 5
    sd = (sum((x - mean) ** 2 for x in d) / 4) ** 0.5
    assert p["diff"] == pytest.approx(0.4)
    assert p["ci95_high"] - p["diff"] == pytest.approx(1.959964 * sd / 5**0.5)
    assert p["ci95_low"] == pytest.approx(0.4 - 1.959964 * sd / 5**0.5) and p["problems"] == 5
    # the same difference on every problem: no noise at all
    assert paired_interval([1.0, 1.0], [0.0, 0.0])["ci95_low"] == pytest.approx(1.0)


def test_within_problem_auc_counts_pairs_inside_each_problem():
    from prmkit.bench.bestofn import Candidate, Problem, within_problem_auc

    def cand(ok, s):
        return Candidate(0, ok, {"min": s})

    # problem 1: right 0.9 above both wrongs (2 wins); problem 2: right 0.2 below wrong 0.5, tie with 0.2 (0 + 0.5)
    # problem 3: all right, left out
    problems = [
        Problem("1", [cand(True, 0.9), cand(False, 0.1), cand(False, 0.5)], [True]),
        Problem("2", [cand(True, 0.2), cand(False, 0.5), cand(False, 0.2)], [True]),
        Problem("3", [cand(True, 0.3)], [True]),
    ]
    out = within_problem_auc(problems, "min")
    assert out == {"auc": pytest.approx(2.5 / 4), "problems": 2}


def test_bestofn_grades_samples_whose_correct_is_null():
    """A sample with a reference and correct: null counts right in PRM selection and pass@N when its answer is."""
    from prmkit.bench.bestofn import build_problem, evaluate_subset

    samples = [
        {"answer": "7", "correct": None, "reference": "7", "aggregates": {"min": 0.9}},
        {"answer": "8", "correct": None, "reference": "7", "aggregates": {"min": 0.1}},
        {"answer": None, "correct": None, "reference": "7", "aggregates": {"min": 0.95}},
    ]
    p = build_problem("q", samples)
    assert [c.correct for c in p.candidates] == [True, False, False]
    hits = evaluate_subset(p, p.candidates[:2], ["min"], "min")
    assert hits["prm_min"] and hits["pass@N"] and hits["majority_vote"]
    # the answerless sample scores highest: PRM selection may pick it, and is then wrong; votes skip it
    hits = evaluate_subset(p, p.candidates, ["min"], "min")
    assert not hits["prm_min"] and hits["majority_vote"]


def test_prmbench_step_rules_follow_the_upstream_wrappers():
    """score: s > 0.5 (most wrappers); difference: Skywork's wrapper, [s0, s1 - s0, ...] > -0.05."""
    from prmkit.bench.prmbench import step_validity

    scores = [0.9, 0.88, 0.7, 0.72, 0.4]
    assert step_validity(scores, 0.5) == [True, True, True, True, False]
    assert step_validity(scores, -0.05, "difference") == [True, True, False, True, False]
