"""`prmkit bench` end to end: ProcessBench (PRM or predictions file), PRMBench and best-of-N reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_score import make_tiny_prm  # tests/ is on sys.path (pytest prepend import mode)

from prmkit.bench import processbench_f1
from prmkit.bench.command import run
from prmkit.bench.recipe import BenchRecipe
from prmkit.errors import RecipeError
from prmkit.recipe import load_recipe

FIXTURES = Path(__file__).parent / "fixtures" / "bench"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="module")
def prm(tmp_path_factory) -> Path:
    return make_tiny_prm(tmp_path_factory.mktemp("bench") / "prm")


def bench(tmp_path: Path, name: str, **spec) -> tuple[dict, dict]:
    path = tmp_path / f"{name}.yaml"
    path.write_text(json.dumps({"output_dir": str(tmp_path / name), **spec}))
    rows = run(load_recipe(BenchRecipe, path), str(path))
    return rows, json.loads((tmp_path / name / "metrics.json").read_text())


def _labels(folder: Path) -> dict[str, dict[str, int]]:
    return {f.stem: {r["id"]: r["label"] for r in json.loads(f.read_text())} for f in sorted(folder.glob("*.json"))}


def test_processbench_from_a_predictions_file(tmp_path):
    labels = _labels(FIXTURES / "processbench")
    preds, want = [], {}
    for subset, rows in labels.items():
        guesses = [(rid, y if k % 3 else -1) for k, (rid, y) in enumerate(rows.items())]
        preds += guesses
        want[subset] = processbench_f1(list(rows.values()), [g for _, g in guesses])
    file = tmp_path / "preds.jsonl"
    file.write_text("".join(json.dumps({"id": i, "prediction": p}) + "\n" for i, p in preds[:-1]))  # one missing
    rows, metrics = bench(
        tmp_path, "pb", benchmark="processbench", data={"path": str(FIXTURES / "processbench")}, predictions=str(file)
    )
    last = list(labels)[-1]
    want[last] = processbench_f1(list(labels[last].values()), [g for _, g in preds[-len(labels[last]) : -1]] + [None])
    assert metrics["missing_predictions"] == 1
    for subset in labels:
        assert metrics["subsets"][subset]["f1"] == pytest.approx(want[subset]["f1"])
    assert metrics["average_f1"] == pytest.approx(sum(w["f1"] for w in want.values()) / len(want))
    report = (tmp_path / "pb" / "report.md").read_text()
    assert "| gsm8k |" in report and (tmp_path / "pb" / "processbench_f1.png").stat().st_size > 1000


def test_processbench_from_a_prm_with_a_tuned_threshold(tmp_path, prm):
    spec = dict(
        benchmark="processbench",
        data={"path": str(FIXTURES / "processbench")},
        prm={"model": str(prm), "device": "cpu", "max_length": 512},
        threshold={"tune_on": "gsm8k"},
    )
    rows, metrics = bench(tmp_path, "pbprm", **spec)
    t = metrics["threshold"]
    assert metrics["threshold_tuned_on"] == "gsm8k" and 0.0 <= t <= 1.0
    scored = [json.loads(line) for line in (tmp_path / "pbprm" / "scored" / "gsm8k.jsonl").read_text().splitlines()]
    from prmkit.bench import first_below, tune_threshold

    labels = [d["meta"]["first_error"] for d in scored]
    best_t, best_f1 = tune_threshold(labels, [d["scores"] for d in scored])
    assert metrics["subsets"]["gsm8k"]["f1"] == pytest.approx(best_f1) and t == pytest.approx(best_t)
    assert metrics["compute"]["scored_tokens_this_run"] > 0
    # a rerun with another threshold reuses the cached scores
    rows, again = bench(tmp_path, "pbprm", **{**spec, "threshold": {"fixed": 0.3}})
    assert again["compute"]["records_scored_this_run"] == 0 and again["threshold"] == 0.3
    want = processbench_f1(labels, [first_below(d["scores"], 0.3) for d in scored])
    assert again["subsets"]["gsm8k"]["f1"] == pytest.approx(want["f1"])


def test_processbench_on_the_embedded_world(tmp_path, prm):
    from prmkit.tasks import get_task

    task = get_task("arithmetic")
    planted = task.planted_errors(16, seed=1, difficulty=task.difficulty("medium"))
    file = tmp_path / "processbench.json"
    file.write_text(json.dumps([task.to_processbench_row(r) for r in planted]))
    rows, metrics = bench(
        tmp_path, "world", benchmark="processbench", data={"path": str(file)}, prm={"model": str(prm), "device": "cpu"}
    )
    m = metrics["subsets"]["processbench"]
    assert m["n_error"] + m["n_correct"] == 16 and metrics["threshold"] == 0.5


@pytest.mark.skipif(not (SHARED / "processbench").is_dir(), reason="../shared/data is not on this machine")
def test_processbench_full_shared_data_with_perfect_and_null_predictions(tmp_path):
    labels = _labels(SHARED / "processbench")
    assert {k: len(v) for k, v in labels.items()} == {
        "gsm8k": 400,
        "math": 1000,
        "olympiadbench": 1000,
        "omnimath": 1000,
    }
    file = tmp_path / "perfect.jsonl"
    file.write_text(
        "".join(json.dumps({"id": i, "prediction": y}) + "\n" for rows in labels.values() for i, y in rows.items())
    )
    _, metrics = bench(
        tmp_path,
        "perfect",
        benchmark="processbench",
        data={"path": str(SHARED / "processbench")},
        predictions=str(file),
    )
    assert metrics["average_f1"] == 1.0 and metrics["subsets"]["math"]["n_error"] == 594
    file.write_text("".join(json.dumps({"id": i, "prediction": -1}) + "\n" for rows in labels.values() for i in rows))
    _, metrics = bench(
        tmp_path, "none", benchmark="processbench", data={"path": str(SHARED / "processbench")}, predictions=str(file)
    )
    assert all(
        m["error_acc"] == 0.0 and m["correct_acc"] == 1.0 and m["f1"] == 0.0 for m in metrics["subsets"].values()
    )


def test_prmbench_from_a_prm(tmp_path, prm):
    rows, metrics = bench(
        tmp_path,
        "prmb",
        benchmark="prmbench",
        data={"path": str(FIXTURES / "prmbench")},
        prm={"model": str(prm), "device": "cpu", "max_length": 1024},
    )
    assert set(metrics["classes"]) == {"correct", "redundency", "circular", "multi_solutions"}
    assert metrics["samples"] == 12 and metrics["scored_share"] == 1.0
    over = metrics["overall"]
    assert over["tp"] + over["fp"] + over["tn"] + over["fn"] > 0
    if over["f1"] is not None and over["negative_f1"] is not None:
        assert over["prm_score"] == pytest.approx(0.5 * over["f1"] + 0.5 * over["negative_f1"])
    assert (tmp_path / "prmb" / "report.md").read_text().startswith("# PRMBench")


def _samples(path: Path) -> Path:
    """Samples as `prmkit sample` writes them: 3 problems x 8 samples, scores that favour right answers."""
    lines = []
    for p in range(3):
        for j in range(8):
            right = j % 4 == p % 4
            answer = "42" if right else "7"
            scores = [0.9, 0.8] if right else [0.7, 0.2 + 0.05 * j]
            lines.append(
                {
                    "id": f"p{p}/s{j}",
                    "problem": f"problem {p}",
                    "steps": ["a", "b"],
                    "answer": answer,
                    "reference": "42",
                    "correct": right,
                    "scores": scores,
                    "meta": {"problem_id": f"p{p}"},
                }
            )
    path.write_text("".join(json.dumps(d) + "\n" for d in lines))
    return path


def test_bestofn_report_from_scored_samples(tmp_path):
    data = _samples(tmp_path / "samples.jsonl")
    rows, metrics = bench(tmp_path, "bon", benchmark="bestofn", data={"path": str(data)}, bestofn={"trials": 8})
    assert metrics["ns"] == [1, 2, 4, 8] and metrics["problems"] == 3
    acc = metrics["accuracy"]
    assert acc["8"]["pass@N"] == 1.0 and acc["8"]["prm_min"] == 1.0 and acc["8"]["majority_vote"] == 0.0
    assert acc["1"]["pass@N"] == acc["1"]["prm_last"] == acc["1"]["majority_vote"]
    assert all(acc[str(a)]["pass@N"] <= acc[str(b)]["pass@N"] for a, b in [(1, 2), (2, 4), (4, 8)])
    assert (tmp_path / "bon" / "bestofn.png").stat().st_size > 1000
    assert "| 8 |" in (tmp_path / "bon" / "report.md").read_text()


def test_bestofn_scores_with_a_prm(tmp_path, prm):
    data = _samples(tmp_path / "samples.jsonl")
    rows, metrics = bench(
        tmp_path,
        "bonprm",
        benchmark="bestofn",
        data={"path": str(data)},
        prm={"model": str(prm), "device": "cpu"},
        bestofn={"ns": [1, 8], "trials": 4},
    )
    assert metrics["ns"] == [1, 8] and metrics["compute"]["records_scored_this_run"] == 24


def test_bench_recipe_errors(tmp_path):
    with pytest.raises(RecipeError, match="allowed"):
        bench(tmp_path, "bad", benchmark="procesbench", data={"path": "x"}, predictions="p.jsonl")
    with pytest.raises(RecipeError, match="prm"):
        bench(tmp_path, "bad2", benchmark="processbench", data={"path": str(FIXTURES / "processbench")})
    with pytest.raises(RecipeError, match="not both"):
        bench(
            tmp_path,
            "bad3",
            benchmark="processbench",
            data={"path": "x"},
            predictions="p",
            threshold={"fixed": 0.5, "tune_on": "gsm8k"},
        )
    with pytest.raises(RecipeError, match="subsets"):
        bench(
            tmp_path,
            "bad4",
            benchmark="processbench",
            data={"path": str(FIXTURES / "processbench")},
            predictions="p",
            processbench={"subsets": ["gsm9k"]},
        )


def test_cli_bench_dry_run_and_one_line_error(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"output_dir: {tmp_path / 'o'}\nbenchmark: processbench\ndata: {{path: {FIXTURES / 'processbench'}}}\n"
        "predictions: missing.jsonl\n"
    )
    env = {**os.environ, "PRMKIT_QUIET": "1"}
    ok = subprocess.run(
        [sys.executable, "-m", "prmkit", "bench", str(recipe), "--dry-run"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "prmkit", "bench", str(recipe)], capture_output=True, text=True, env=env, timeout=120
    )
    assert bad.returncode == 1 and "missing.jsonl" in bad.stderr and "Traceback" not in bad.stderr
