"""`prmkit report`: one report.md over a chain's runs, its headline computed from the data.

The stage outputs are made with the stages' own code where that needs no model: best-of-N and ProcessBench by
running `prmkit bench` (scores carried in the samples; a predictions file), the search metrics by the search
stage's own summarize, the annotation metrics by annotate's own summarize over labels.jsonl. Only the train
and sample metrics (which need a model) are written by hand, in the layout those stages write.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from prmkit.annotate.command import summarize as annotate_summary
from prmkit.bench.command import run as run_bench
from prmkit.bench.recipe import BenchRecipe
from prmkit.errors import RecipeError
from prmkit.recipe import load_recipe
from prmkit.records import Record
from prmkit.report.command import run as run_report
from prmkit.report.headline import Comparison, bestofn_comparison, describe, search_comparison
from prmkit.report.recipe import ReportRecipe
from prmkit.report.sections import BESTOFN_PNG, SEARCH_PNG
from prmkit.search import report as search_report

PROBLEMS = 20


def write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def write_jsonl(path: Path, records: list[Record]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(r.to_json() + "\n" for r in records))


def sample(pid: int, k: int, answer: str, reference: str, score: float) -> Record:
    return Record(
        id=f"p{pid}/s{k}",
        problem=f"problem {pid}",
        steps=["1 + 1 = 2", f"The answer is {answer}."],
        answer=answer,
        reference=reference,
        correct=answer == reference,
        scores=[score, score],
        meta={"problem_id": f"p{pid}"},
    )


def bestofn_samples() -> list[Record]:
    """4 samples per problem. Even problems: two wrong samples share an answer and outvote the one right sample,
    which the PRM scores highest. Odd problems: three right samples. At N = 4: PRM 100%, majority vote 50%."""
    out = []
    for pid in range(PROBLEMS):
        if pid % 2 == 0:
            out += [
                sample(pid, 0, "7", "42", 0.2),
                sample(pid, 1, "42", "42", 0.9),
                sample(pid, 2, "7", "42", 0.2),
                sample(pid, 3, "8", "42", 0.3),
            ]
        else:
            out += [sample(pid, k, "42", "42", 0.8) for k in range(3)] + [sample(pid, 3, "5", "42", 0.1)]
    return out


def bench(tmp: Path, name: str, text: str) -> None:
    path = tmp / f"{name}.yaml"
    path.write_text(text)
    run_bench(load_recipe(BenchRecipe, path), str(path))


def search_rows() -> list[dict]:
    """10 problems; majority vote right on 3 at both budgets; best_of_n right on 2 at N = 2 and 6 at N = 4."""
    rows = []
    for budget, right in ((2, {"majority": 3, "best_of_n": 2}), (4, {"majority": 3, "best_of_n": 6})):
        for label in ("majority", "best_of_n"):
            for pid in range(10):
                ok = pid < right[label]
                rows.append(
                    {
                        "id": f"p{pid}/{label}/n{budget}",
                        "answer": "42" if ok else "7",
                        "correct": ok,
                        "meta": {
                            "problem_id": f"p{pid}",
                            "method": label,
                            "method_name": label,
                            "budget": budget,
                            "generated_tokens": 50 * budget,
                            "scored_tokens": 0 if label == "majority" else 60 * budget,
                            "wall_s": 0.01,
                            "oracle": pid < 7,
                        },
                    }
                )
    return rows


def labelled(pid: int, labels: list[float], truth: list[float], method: str) -> Record:
    soft = [0.75 * x for x in labels]
    return Record(
        id=f"l{pid}",
        problem=f"problem {pid}",
        steps=["a", "b", "c"],
        reference="1",
        labels=labels,
        meta={
            "true_labels": truth,
            "annotation": {
                "method": method,
                "first_error": None,
                "hard": labels,
                "soft": soft,
                "rollouts": 6,
                "generated_tokens": 120,
            },
        },
    )


def annotate_run(folder: Path, method: str, records: list[Record]) -> None:
    write_jsonl(folder / "labels.jsonl", records)
    metrics = annotate_summary(folder, SimpleNamespace(method=SimpleNamespace(name=method)))
    metrics["counts"] = {"solutions read": len(records)}
    write_json(folder / "metrics.json", metrics)


@pytest.fixture
def chain(tmp_path: Path) -> Path:
    """A quickstart-shaped runs/ folder in which the PRM beats majority vote."""
    runs = tmp_path / "runs"
    write_json(
        runs / "policy" / "metrics.json",
        {
            "objective": "sft",
            "eval": {"eval_loss": 0.3},
            "policy": {
                "problems": 50,
                "answer_accuracy@T0": 0.54,
                "process_accuracy@T0": 0.5,
                "answer_accuracy@T0.7": 0.36,
                "process_accuracy@T0.7": 0.3,
            },
            "checkpoint": str(runs / "policy" / "final"),
        },
    )
    write_json(
        runs / "sample" / "metrics.json",
        {
            "problems": PROBLEMS,
            "samples": 4 * PROBLEMS,
            "n": 4,
            "accuracy": 0.5,
            "majority_accuracy": 0.5,
            "pass_at_n": 1.0,
            "generated_tokens": 8000,
            "truncated": 0,
        },
    )
    truth = [1.0, 0.0, 0.0]
    annotate_run(
        runs / "annotate",
        "binary",
        [labelled(i, truth if i % 4 else [1.0, 1.0, 0.0], truth, "binary") for i in range(8)],
    )
    annotate_run(runs / "annotate_mc", "mc", [labelled(i, truth, truth, "mc") for i in range(4)])
    write_json(
        runs / "prm" / "metrics.json",
        {"objective": "prm", "eval": {"step_accuracy": 0.8, "step_f1": 0.7, "first_error_f1": 0.625}, "policy": {}},
    )
    write_jsonl(runs / "sample" / "samples.jsonl", bestofn_samples())
    bench(
        tmp_path,
        "bestofn",
        f"output_dir: {runs / 'bench_bestofn'}\nbenchmark: bestofn\n"
        f"data: {{path: {runs / 'sample' / 'samples.jsonl'}}}\nbestofn: {{trials: 4}}\n",
    )
    pb = [
        {
            "id": f"q{i}",
            "generator": "g",
            "problem": "p",
            "steps": ["a", "b", "c"],
            "label": [-1, 1, 2, -1][i % 4],
            "final_answer_correct": i % 4 in (0, 3),
        }
        for i in range(8)
    ]
    write_json(tmp_path / "world" / "processbench.json", pb)
    preds = tmp_path / "preds.jsonl"
    preds.write_text(
        "".join(json.dumps({"id": r["id"], "prediction": [-1, 1, 0, 2][i % 4]}) + "\n" for i, r in enumerate(pb))
    )
    bench(
        tmp_path,
        "pb",
        f"output_dir: {runs / 'bench_processbench'}\nbenchmark: processbench\n"
        f"data: {{path: {tmp_path / 'world' / 'processbench.json'}}}\npredictions: {preds}\n",
    )
    metrics = search_report.summarize(search_rows())
    metrics["budgets"] = [2, 4]
    write_json(runs / "search" / "metrics.json", metrics)
    return runs


def report_recipe(tmp_path: Path, runs: Path, **extra: str) -> Path:
    lines = [f"output_dir: {tmp_path / 'report'}", "runs:"]
    for key, folder in {
        "policy": "policy",
        "sample": "sample",
        "prm": "prm",
        "processbench": "bench_processbench",
        "bestofn": "bench_bestofn",
        "search": "search",
    }.items():
        lines.append(f"  {key}: {extra.get(key, runs / folder)}")
    lines.append(f"  annotate: [{runs / 'annotate*'}]")
    path = tmp_path / "report.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def make_report(tmp_path: Path, runs: Path, **extra: str) -> tuple[str, dict]:
    path = report_recipe(tmp_path, runs, **extra)
    rows = run_report(load_recipe(ReportRecipe, path), str(path))
    return (tmp_path / "report" / "report.md").read_text(), rows


def headline_of(text: str) -> str:
    return text.split("\n## ", 1)[0]


def test_headline_states_the_computed_win_over_majority_vote(chain, tmp_path):
    text, rows = make_report(tmp_path, chain)
    head = headline_of(text)
    # best-of-N at N = 4 (the full draw): every PRM variant 100%, majority vote 50% (see bestofn_samples)
    assert "**Best-of-N:** PRM-guided selection **beat majority vote**: at N = 4" in head
    assert "`prm_min`, reached 100.0% against majority vote's 50.0%, **+50.0 points**" in head
    assert "over 20 problems" in head
    assert "A right answer was among the candidates for 100.0% of problems at N = 4" in head
    # search at N = 4: best_of_n 60% against majority 30%, inside the noise of 10 problems
    noise = 2 * ((0.6 * 0.4 + 0.3 * 0.7) / 10) ** 0.5
    assert "**Search:** PRM-guided selection was **above majority vote, but only within sampling noise**" in head
    assert "reached 60.0% against majority vote's 30.0%, **+30.0 points**" in head
    assert f"±{100 * noise:.1f} points" in head
    assert "some PRM-guided method was above majority vote only at N = 4" in head
    assert "the policy answers 54.0% greedy, 36.0% sampled (T = 0.7)" in head
    assert rows["best-of-N @N=4: best PRM (prm_min) vs majority"] == "100.0% vs 50.0% (beat)"


def test_report_sections_and_plots(chain, tmp_path):
    text, _ = make_report(tmp_path, chain)
    out = tmp_path / "report"
    for png in (BESTOFN_PNG, SEARCH_PNG):
        assert (out / png).stat().st_size > 1000
        assert f"]({png})" in text
    assert (out / "manifest.json").exists() and (out / "recipe.yaml").exists()
    assert "| greedy | 54.0 | 50.0 |" in text
    # both annotation runs: binary (6 of 8 solutions exactly right) and mc with its hard and soft audits
    binary = next(line for line in text.splitlines() if line.startswith("| binary |"))
    cells = [c.strip() for c in binary.strip("|").split("|")]
    assert cells[1] == "8" and cells[6] == "6" and cells[7] == "120"
    assert float(cells[2]) == pytest.approx(100 * 22 / 24, abs=0.05)  # 2 of 24 steps wrong
    assert "| mc |" in text and "| mc (mc_hard) |" in text and "| mc (mc_soft@0.5) |" in text
    # ProcessBench from the predictions: 2 of 4 first errors found, 2 of 4 correct solutions left unflagged
    assert "| processbench | 8 | 50.0 | 50.0 | 50.0 |" in text
    assert "first-error F1 62.5%" in text
    assert "| majority (no PRM) | 30.0 (100) | 30.0 (200) |" in text
    assert "| best_of_n | 20.0 (100) | 60.0 (200) |" in text


def test_a_loss_is_said_plainly():
    metrics = {
        "problems": 100,
        "accuracy": {
            "1": {"prm_min": 0.2, "majority_vote": 0.2, "pass@N": 0.2},
            "8": {"prm_min": 0.25, "prm_last": 0.21, "majority_vote": 0.3, "pass@N": 0.6},
        },
    }
    c = bestofn_comparison(metrics)
    assert (c.n, c.method, c.verdict) == (8, "prm_min", "below")
    assert c.diff == pytest.approx(-0.05)
    text = describe(c)
    assert text.startswith("PRM-guided selection **did not beat majority vote**: at N = 8, the best of 2")
    assert "**−5.0 points**" in text
    tie = Comparison("search", 4, "beam", 0.3, 0.3, 50, 1)
    assert tie.verdict == "tied" and "**tied with majority vote**" in describe(tie)


def test_search_comparison_needs_majority_vote():
    metrics = search_report.summarize([r for r in search_rows() if r["meta"]["method"] != "majority"])
    assert search_comparison(metrics) is None
    assert search_comparison(search_report.summarize(search_rows())).n == 4


def test_stages_not_run_are_lines_not_errors(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    text, rows = make_report(tmp_path, runs)
    assert rows["stages read"] == 0
    assert "**Best-of-N:** no results (stage not run" in text and "**Search:** no results" in text
    assert f"_policy (prmkit train, sft): stage not run (`{runs / 'policy'}`: no such folder)._" in text
    assert f"`{runs / 'annotate*'}`: no folder matches" in text
    assert not (tmp_path / "report" / BESTOFN_PNG).exists()


def test_a_section_left_out_and_an_unreadable_input(chain, tmp_path):
    (chain / "prm" / "metrics.json").write_text("{not json")
    write_json(chain / "bench_bestofn" / "metrics.json", {"benchmark": "bestofn", "accuracy": [1, 2]})
    text, _ = make_report(tmp_path, chain, search="null")
    assert "## Search" not in text and "**Search:**" not in text
    assert "could not read" in text and "prm" in text
    assert "best-of-N (prmkit bench): `" in text and "unexpected layout" in text
    assert "**Best-of-N:** no PRM-guided method and majority vote measured at the same N" in text


def test_recipe_errors(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("runs: {serch: x}\n")
    with pytest.raises(RecipeError, match="did you mean 'runs.search'"):
        load_recipe(ReportRecipe, path)


def test_cli_exit_codes_and_dry_run(chain, tmp_path):
    env = {**os.environ, "PRMKIT_QUIET": "1", "COLUMNS": "200"}
    cli = [sys.executable, "-m", "prmkit", "report"]
    bad = subprocess.run(
        [*cli, str(report_recipe(tmp_path, chain)), "title.x=1"], capture_output=True, text=True, env=env, timeout=120
    )
    assert bad.returncode == 2 and "error:" in bad.stderr
    dry = subprocess.run(
        [*cli, str(report_recipe(tmp_path, chain, search=str(tmp_path / "nope"))), "--dry-run"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert dry.returncode == 0, dry.stderr
    shown = dry.stdout + dry.stderr
    assert "missing" in shown and "found" in shown
    assert not (tmp_path / "report").exists()


def test_headline_uses_the_paired_interval_when_bench_gives_one():
    from prmkit.report.headline import bestofn_comparison, describe

    metrics = {
        "problems": 400,
        "accuracy": {"8": {"prm_min": 0.70, "majority_vote": 0.66, "pass@N": 0.9}},
        "paired_vs_majority": {"8": {"prm_min": {"diff": 0.04, "ci95_low": 0.01, "ci95_high": 0.07}}},
    }
    c = bestofn_comparison(metrics)
    assert c.paired_ci95 == (0.01, 0.07) and c.verdict == "beat"
    assert "paired 95% interval over 400 problems: +1.0 to +7.0 points" in describe(c)
    metrics["paired_vs_majority"]["8"]["prm_min"].update(ci95_low=-0.01, ci95_high=0.09)
    c = bestofn_comparison(metrics)
    assert c.verdict == "within_noise"  # the interval reaches below 0
