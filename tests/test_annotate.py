"""annotate: the labellers against the exact truth with an oracle policy, and the real path with a tiny model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from prmkit.annotate.command import AnnotateRecipe, run, worst_case_rollouts
from prmkit.annotate.methods.judge import parse_verdict
from prmkit.engines import Completion, SamplerStats, SamplingParams
from prmkit.models.tiny import make_tiny_model
from prmkit.records import Record
from prmkit.tasks import get_task

TASK = get_task("arithmetic")


class OraclePolicy:
    """A policy that reaches the right answer exactly when the prefix it continues has no wrong step.

    With it, a sound MC labeller must reproduce the checker's truth; any slip in the bisection or the
    bookkeeping shows up as a wrong label."""

    tokenizer = None

    def __init__(self) -> None:
        self.stats = SamplerStats()
        self.calls: list[int] = []

    def generate(self, prompts: list[str], params: SamplingParams, progress=None) -> list[list[Completion]]:
        self.calls.append(len(prompts))
        out = []
        for prompt in prompts:
            problem_text, _, rest = prompt.partition("\n")
            problem = TASK.parse_problem(problem_text)
            steps = [s for s in rest.split("\n") if s]
            ok = TASK.check(problem, steps).first_error == -1
            answer = problem.answer if ok else problem.answer + 1
            text = f"The answer is {answer}."
            out.append([Completion(text, "eos", 5) for _ in range(params.n)])
            self.stats.prompt_tokens += len(prompt)
            self.stats.generated_tokens += 5 * params.n
        return out

    def close(self) -> None:
        pass


def planted(n: int = 60) -> list[Record]:
    """Planted-error records whose final-answer verdict agrees with the process truth (MC can only see those)."""
    recs = TASK.planted_errors(n * 2, seed=11)
    return [r for r in recs if bool(r.correct) == (r.meta["first_error"] == -1)][:n]


def write(path: Path, records: list[Record]) -> Path:
    path.write_text("".join(r.to_json() + "\n" for r in records))
    return path


def recipe(tmp_path: Path, data: Path, name: str, **extra) -> AnnotateRecipe:
    return AnnotateRecipe.model_validate({
        "output_dir": str(tmp_path / name), "solutions": {"path": str(data)},
        "policy": {"model": "oracle"}, "rollout": {"k": 3}, "steps": {"style": "lines"},
        "method": {"name": name}, "chunk_size": 16, **extra,
    })


@pytest.fixture
def oracle(monkeypatch):
    policy = OraclePolicy()
    monkeypatch.setattr("prmkit.engines.make_sampler", lambda *a, **k: policy)
    return policy


@pytest.mark.parametrize("method", ["mc", "binary"])
def test_labels_match_the_truth_with_an_oracle_policy(tmp_path, oracle, method):
    records = planted()
    data = write(tmp_path / "sol.jsonl", records)
    run(recipe(tmp_path, data, method), "r.yaml")
    out = [json.loads(x) for x in (tmp_path / method / "labels.jsonl").read_text().splitlines()]
    assert [o["id"] for o in out] == [r.id for r in records]
    for o, r in zip(out, records):
        assert o["meta"]["annotation"]["first_error"] == r.meta["first_error"], o["id"]
        assert o["labels"] == r.labels
    metrics = json.loads((tmp_path / method / "metrics.json").read_text())
    assert metrics["audit"]["labels"]["step_accuracy"] == 1.0
    assert metrics["audit"]["labels"]["first_error_f1"] == 1.0


def test_binary_search_spends_fewer_rollouts_than_mc(tmp_path, oracle):
    data = write(tmp_path / "sol.jsonl", planted())
    run(recipe(tmp_path, data, "mc"), "r.yaml")
    run(recipe(tmp_path, data, "binary"), "r.yaml")
    mc = json.loads((tmp_path / "mc" / "metrics.json").read_text())["cost"]["rollouts"]
    binary = json.loads((tmp_path / "binary" / "metrics.json").read_text())["cost"]["rollouts"]
    assert 0 < binary < 0.6 * mc
    # every rollout of binary search is within its worst case
    for line in (tmp_path / "binary" / "labels.jsonl").read_text().splitlines():
        d = json.loads(line)
        assert d["meta"]["annotation"]["rollouts"] <= worst_case_rollouts("binary", len(d["steps"]), 3)


def test_mc_soft_labels_are_fractions(tmp_path, monkeypatch):
    class HalfRight(OraclePolicy):
        def generate(self, prompts, params, progress=None):
            return [[Completion(f"The answer is {x}.", "eos", 3) for x in ("25", "0", "25", "1")] for _ in prompts]

    monkeypatch.setattr("prmkit.engines.make_sampler", lambda *a, **k: HalfRight())
    rec = Record(id="a", problem="p", steps=["x", "y", "The answer is 3."], reference="25", correct=False)
    data = write(tmp_path / "sol.jsonl", [rec])
    run(recipe(tmp_path, data, "mc", rollout={"k": 4}, method={"name": "mc", "label_type": "soft"}), "r.yaml")
    d = json.loads((tmp_path / "mc" / "labels.jsonl").read_text())
    assert d["labels"] == [0.5, 0.5, 0.0] and d["meta"]["annotation"]["hard"] == [1.0, 1.0, 0.0]


def test_prefilter_and_rollout_cap(tmp_path, oracle):
    recs = []
    for pid, flags in {"all-right": [1, 1], "mixed": [1, 0], "all-wrong": [0, 0]}.items():
        for j, ok in enumerate(flags):
            recs.append(Record(id=f"{pid}/{j}", problem="Start at 1. Add 2. Add 3. Add 4. What is the result?",
                               steps=["1 + 2 = 3", "3 + 3 = 6", "6 + 4 = 10", "The answer is 10."],
                               reference="10", correct=bool(ok), meta={"problem_id": pid}))
    data = write(tmp_path / "sol.jsonl", recs)
    run(recipe(tmp_path, data, "mc", prefilter={"enabled": True}), "r.yaml")
    ids = [json.loads(x)["id"] for x in (tmp_path / "mc" / "labels.jsonl").read_text().splitlines()]
    assert ids == ["mixed/0", "mixed/1"]
    run(recipe(tmp_path, data, "binary", max_rollouts_per_problem=6), "r.yaml")
    metrics = json.loads((tmp_path / "binary" / "metrics.json").read_text())
    assert metrics["counts"]["dropped by rollout cap"] == 3  # 6 rollouts fit one solution per problem


def test_judge_verdict_parsing():
    assert parse_verdict(r"Step 2 is wrong, so \boxed{2}", 5) == 2
    assert parse_verdict(r"all fine \boxed{-1}", 5) == -1
    assert parse_verdict("the first error is at step 3", 5) == 3
    assert parse_verdict(r"\boxed{9}", 5) is None and parse_verdict("no idea", 5) is None


def test_consensus_keeps_only_agreeing_labels(tmp_path, oracle, monkeypatch):
    records = planted(20)
    data = write(tmp_path / "sol.jsonl", records)

    class Judge(OraclePolicy):
        """Names the true first error for even-numbered records and step 0 for the others."""

        def generate(self, prompts, params, progress=None):
            out = []
            for prompt in prompts:
                rec = next(r for r in records if r.problem in prompt and all(s in prompt for s in r.steps))
                k = records.index(rec)
                verdict = rec.meta["first_error"] if k % 2 == 0 else 0
                out.append([Completion(f"\\boxed{{{verdict}}}", "eos", 4)])
            return out

    judge = Judge()
    policies = iter([oracle, judge])
    monkeypatch.setattr("prmkit.engines.make_sampler", lambda *a, **k: next(policies))
    r = recipe(tmp_path, data, "consensus", judge={"model": {"model": "judge"}})
    run(r, "r.yaml")
    kept = [json.loads(x)["id"] for x in (tmp_path / "consensus" / "labels.jsonl").read_text().splitlines()]
    rejected = [json.loads(x)["id"] for x in (tmp_path / "consensus" / "rejected.jsonl").read_text().splitlines()]
    expected = [r.id for k, r in enumerate(records) if k % 2 == 0 or r.meta["first_error"] == 0]
    assert kept == expected and len(kept) + len(rejected) == len(records)


def test_annotate_cli_with_a_real_tiny_model_resumes(tmp_path):
    texts = [TASK.prompt(p) + "\n".join(TASK.reference_solution(p)) for p in TASK.make_problems(40, seed=1)]
    model = make_tiny_model(tmp_path / "policy", texts=texts, hidden_size=64, num_layers=2, num_heads=2)
    data = write(tmp_path / "sol.jsonl", planted(12))
    cfg = tmp_path / "a.yaml"
    cfg.write_text(
        f"output_dir: {tmp_path / 'out'}\nsolutions: {{path: {data}}}\npolicy: {{model: {model}, device: cpu}}\n"
        "rollout: {k: 2, max_new_tokens: 16}\nsteps: {style: lines}\nmethod: {name: mc}\nchunk_size: 4\n"
    )
    env = {**os.environ, "PRMKIT_QUIET": "1"}
    res = subprocess.run([sys.executable, "-m", "prmkit", "annotate", str(cfg)], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    whole = (tmp_path / "out" / "labels.jsonl").read_bytes()
    lines = whole.splitlines(keepends=True)
    (tmp_path / "out" / "labels.jsonl").write_bytes(b"".join(lines[:5]) + lines[5][:20])  # a kill mid-chunk
    (tmp_path / "out" / "labels.jsonl.complete").unlink()
    res = subprocess.run([sys.executable, "-m", "prmkit", "annotate", str(cfg)], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "out" / "labels.jsonl").read_bytes() == whole
