"""annotate: the labellers against the exact truth with an oracle policy, and the real path with a tiny model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from prmkit.annotate.command import run
from prmkit.annotate.methods.judge import parse_verdict
from prmkit.annotate.recipe import AnnotateRecipe, MethodSpec
from prmkit.annotate.selection import worst_case_rollouts
from prmkit.engines import Completion, SamplerStats, SamplingParams
from prmkit.models.tiny import make_tiny_model
from prmkit.records import Record
from prmkit.tasks import get_task

TASK = get_task("arithmetic")


def read_prompt(prompt: str):
    """The world problem of an annotation prompt, the steps written so far, and whether they are all right."""
    head, _, rest = prompt.partition("\n")
    problem = TASK.parse_problem(head)
    steps = [s for s in rest.split("\n") if s]
    return problem, steps, TASK.check(problem, steps).first_error == -1


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
            problem, steps, ok = read_prompt(prompt)
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
    return AnnotateRecipe.model_validate(
        {
            "output_dir": str(tmp_path / name),
            "solutions": {"path": str(data)},
            "policy": {"model": "oracle"},
            "rollout": {"k": 3},
            "steps": {"style": "lines"},
            "method": {"name": name},
            "chunk_size": 16,
            **extra,
        }
    )


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
        assert d["meta"]["annotation"]["rollouts"] <= worst_case_rollouts("binary", len(d["steps"]), 3, MethodSpec())


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
            recs.append(
                Record(
                    id=f"{pid}/{j}",
                    problem="Start at 1. Add 2. Add 3. Add 4. What is the result?",
                    steps=["1 + 2 = 3", "3 + 3 = 6", "6 + 4 = 10", "The answer is 10."],
                    reference="10",
                    correct=bool(ok),
                    meta={"problem_id": pid},
                )
            )
    data = write(tmp_path / "sol.jsonl", recs)
    run(recipe(tmp_path, data, "mc", prefilter={"enabled": True}), "r.yaml")
    ids = [json.loads(x)["id"] for x in (tmp_path / "mc" / "labels.jsonl").read_text().splitlines()]
    assert ids == ["mixed/0", "mixed/1"]
    exact = {"name": "binary", "bisect_draws": None}
    run(recipe(tmp_path, data, "binary", max_rollouts_per_problem=6, method=exact), "r.yaml")
    metrics = json.loads((tmp_path / "binary" / "metrics.json").read_text())
    assert metrics["counts"]["dropped by rollout cap"] == 3  # 6 (2 probes x k 3) fit one solution per problem
    # lazy confirmation's worst case for 4 steps at k 3: probes of 2 draws, the boundary's third draw, and one
    # overturned bad (then all k) = 9, so a cap of 6 admits none and 9 one per problem
    for cap, dropped in ((6, 6), (9, 3)):
        run(recipe(tmp_path, data, "binary", max_rollouts_per_problem=cap, output_dir=str(tmp_path / f"c{cap}")), "r")
        assert (
            json.loads((tmp_path / f"c{cap}" / "metrics.json").read_text())["counts"]["dropped by rollout cap"]
            == dropped
        )


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


class CoinPolicy(OraclePolicy):
    """Sample j of a prompt reaches the reference with odds that fall with the prefix's wrong steps, drawn from
    (prompt seed, j) alone, as the real engines draw it: a sample is the same draw in whichever wave it comes."""

    def generate(self, prompts, params, progress=None):
        import hashlib

        out = []
        for prompt, seed in zip(prompts, params.seeds_for(len(prompts), 0)):
            problem, steps, ok = read_prompt(prompt)
            row = []
            for j in range(params.first_sample, params.first_sample + params.n):
                u = int(hashlib.sha256(f"{seed}/{j}".encode()).hexdigest(), 16) % 1000 / 1000
                right = u < (0.6 if ok else 0.05)
                row.append(Completion(f"The answer is {problem.answer if right else problem.answer + 1}.", "eos", 5))
            out.append(row)
            self.stats.generated_tokens += 5 * params.n
        return out


@pytest.mark.parametrize("method", ["binary", "mc"])
def test_early_stopping_gives_the_all_k_labels_for_fewer_rollouts(tmp_path, monkeypatch, method):
    """Waves (1, 1, 2, 4 of k = 8) stop a prefix at its first success: the hard labels equal the all-k run's
    exactly (the engines draw sample j of a prefix the same in any wave: tests/test_engine_*.py), for fewer
    rollouts and tokens."""
    monkeypatch.setattr("prmkit.engines.make_sampler", lambda *a, **k: CoinPolicy())
    data = write(tmp_path / "sol.jsonl", planted(30))

    def label(name: str, early: bool) -> tuple[list, dict]:
        r = recipe(tmp_path, data, method, output_dir=str(tmp_path / name), rollout={"k": 8, "early_stop": early})
        r.method.bisect_draws = None  # every probe to its k draws (lazy confirmation: its own test)
        run(r, "r")
        rows = [json.loads(x) for x in (tmp_path / name / "labels.jsonl").read_text().splitlines()]
        return [d["labels"] for d in rows], json.loads((tmp_path / name / "metrics.json").read_text())["cost"]

    labels, cost = label("early", True)
    all_k, full = label("all", False)
    assert labels == all_k
    assert any(0.0 in x for x in labels) and any(x and min(x) == 1.0 for x in labels)
    assert cost["rollouts"] < 0.8 * full["rollouts"] and cost["generated_tokens"] < 0.8 * full["generated_tokens"]


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
    res = subprocess.run(
        [sys.executable, "-m", "prmkit", "annotate", str(cfg)], capture_output=True, text=True, env=env
    )
    assert res.returncode == 0, res.stderr
    whole = (tmp_path / "out" / "labels.jsonl").read_bytes()
    lines = whole.splitlines(keepends=True)
    (tmp_path / "out" / "labels.jsonl").write_bytes(b"".join(lines[:5]) + lines[5][:20])  # a kill mid-chunk
    (tmp_path / "out" / "labels.jsonl.complete").unlink()
    res = subprocess.run(
        [sys.executable, "-m", "prmkit", "annotate", str(cfg)], capture_output=True, text=True, env=env
    )
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "out" / "labels.jsonl").read_bytes() == whole


# --------------------------------------------------------------------------- omega: OmegaPRM's tree search

from prmkit.annotate.methods.omega import OmegaOptions, ProblemTree, drive, q_value, u_value  # noqa: E402
from prmkit.annotate.rollouts import Rollout  # noqa: E402
from prmkit.errors import DataError  # noqa: E402


def test_omega_selection_formula_on_hand_computed_numbers():
    # Q = alpha^(1-MC) * beta^(len/L), U = c_puct * sqrt(sum N) / (1 + N), paper defaults
    assert q_value(0.5, 100, 0.5, 0.9, 500) == pytest.approx(0.707107 * 0.979148, abs=1e-5)
    assert q_value(1.0, 0, 0.5, 0.9, 500) == 1.0
    assert u_value(0.125, 2, 2) == pytest.approx(0.058926, abs=1e-6)
    assert u_value(0.125, 0, 0) == 0.0
    wrong = Record(id="w", problem="p", steps=["a", "b", "c"], reference="1", correct=False)
    tree = ProblemTree([(wrong, 100)], OmegaOptions(k=4))
    tree.nodes[()].mc, tree.nodes[()].visits = 0.5, 2
    tree.nodes[("a",)] = type(tree.nodes[()])(("a",), 0.25)
    tree._add_candidate(("a",), Rollout(["x", "y"], False, 50))
    root_cand, a_cand = tree.pool
    # root pair: 0.5^0.5 * 0.9^0.2 + 0.125 * sqrt(2) / 3 = 0.692362 + 0.058926
    assert tree.score(root_cand, 2) == pytest.approx(0.751288, abs=1e-5)
    # the pair of state ("a",): 0.5^0.75 * 0.9^0.1 + 0.125 * sqrt(2) / 1 = 0.588372 + 0.176777
    assert tree.score(a_cand, 2) == pytest.approx(0.765149, abs=1e-5)
    assert tree.select() is a_cand
    tree.nodes[("a",)].visits = 3  # U(a) = 0.125 * sqrt(5) / 4 = 0.069877; root: 0.125 * sqrt(5) / 3 = 0.093169
    assert tree.select() is root_cand


def planted_world(first_error: int = 5, n: int = 8):
    """A wrong solution whose step `first_error` is the first bad one, and a deterministic rollout function:
    a prefix free of bad steps gets one right and one wrong (reusable) rollout, a bad prefix only wrong ones."""
    steps = [f"s{i}" if i < first_error else f"bad{i}" for i in range(n)]
    wrong = Record(id="sol", problem="p", steps=steps, reference="1", correct=False)
    probes: list[tuple[str, ...]] = []

    def sample(prefix):
        probes.append(prefix)
        if any(s.startswith("bad") for s in prefix):
            return [Rollout(["junk"], False, 3), Rollout(["junk"], False, 3)]
        return [Rollout(["The answer is 1."], True, 4), Rollout([f"bad-after-{len(prefix)}", "more"], False, 5)]

    return wrong, sample, probes


def test_omega_binary_search_finds_a_planted_first_error():
    wrong, sample, probes = planted_world(first_error=5, n=8)
    tree = drive(ProblemTree([(wrong, 40)], OmegaOptions(k=2, max_searches=1)), sample)
    (path,) = tree.paths
    assert path.first_error == 5 and path.source is wrong and len(probes) == 3  # ceil(log2 8) probes
    hard, soft = tree.labels(path)
    assert hard == [1.0] * 5 + [0.0] * 3
    assert soft == [0.5] * 5 + [0.0] * 3 and all((s > 0) == (h == 1.0) for s, h in zip(soft, hard))
    assert path.cost.rollouts == 3 * 2 and path.cost.generated_tokens == sum(
        sum(r.tokens for r in sample(p)) for p in probes[:3]
    )
    # the rollouts reused as candidates: wrong ones of the good probes, from their states
    assert {c.state for c in tree.pool} == {p for p in probes[:3] if not any(s.startswith("bad") for s in p)}


def test_omega_reused_rollouts_are_searched_and_labelled():
    wrong, sample, _ = planted_world(first_error=3, n=6)
    tree = drive(ProblemTree([(wrong, 40)], OmegaOptions(k=2, max_searches=50)), sample)
    assert not tree.pool and len(tree.paths) > 1  # the search ran until no candidate was left
    for path in tree.paths:
        truth = next(i for i, s in enumerate(path.steps) if s.startswith("bad"))
        assert path.first_error == truth, path.steps
        hard, soft = tree.labels(path)
        assert hard == [1.0] * truth + [0.0] * (len(path.steps) - truth)
        assert [s > 0 for s in soft] == [h == 1.0 for h in hard]
    assert len({p.steps for p in tree.paths}) == len(tree.paths)  # each path searched once


def test_omega_respects_its_budgets():
    wrong, sample, probes = planted_world(first_error=6, n=16)
    tree = drive(ProblemTree([(wrong, 40)], OmegaOptions(k=2, max_searches=3)), sample)
    assert sum(p.searched for p in tree.paths) == 3
    for cap in (8, 9, 13):
        probes.clear()
        tree = drive(ProblemTree([(wrong, 40)], OmegaOptions(k=2, max_searches=100, max_rollouts=cap)), sample)
        assert tree.rollouts == 2 * len(probes) <= cap
        assert tree.rollouts + 2 * 4 > cap or not tree.pool  # it stopped only when the next search might not fit


def world_solutions(n_problems: int = 6) -> list[Record]:
    """Per problem: the reference solution and two wrong ones (an arithmetic slip at different steps)."""
    out = []
    for p in TASK.make_problems(n_problems, seed=5):
        ref = TASK.reference_solution(p)
        variants = [ref]
        for j in (0, len(ref) - 2):
            a, rest = ref[j].rsplit("= ", 1)
            variants.append(ref[:j] + [f"{a}= {int(rest) + 1}"] + ref[j + 1 : -1] + [f"The answer is {p.answer + 1}."])
        for s, steps in enumerate(variants):
            rec = TASK.to_record(p, steps)
            rec.id, rec.meta["problem_id"] = f"{p.id}/s{s}", p.id
            out.append(rec)
    return out


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_omega_records_are_well_formed_and_match_the_truth_with_an_oracle(tmp_path, oracle):
    records = world_solutions()
    data = write(tmp_path / "sol.jsonl", records)
    run(recipe(tmp_path, data, "omega", chunk_size=5), "r.yaml")
    out = read_jsonl(tmp_path / "omega" / "labels.jsonl")
    assert len({o["id"] for o in out}) == len(out) == len(records)  # the oracle's rollouts add no new branch
    for o in out:
        ann = o["meta"]["annotation"]
        assert len(o["labels"]) == len(o["steps"]) == len(ann["soft"]) == len(ann["hard"])
        assert o["labels"] == ann["hard"]
        assert [s > 0 for s in ann["soft"]] == [h == 1.0 for h in ann["hard"]]
        assert ann["first_error"] == o["meta"]["first_error"]
        assert ann["method"] == "omega" and ann["paths"] == 3 and ann["problem_id"] == o["meta"]["problem_id"]
    metrics = json.loads((tmp_path / "omega" / "metrics.json").read_text())
    assert metrics["audit"]["labels"]["step_accuracy"] == 1.0 and metrics["audit"]["labels"]["first_error_f1"] == 1.0
    assert metrics["cost"]["rollouts"] == sum(o["meta"]["annotation"]["rollouts"] for o in out) > 0


class Branching(OraclePolicy):
    """From a right prefix: even samples finish right, odd ones write the next step right and then a wrong
    answer (new wrong branches to reuse); from a wrong prefix, a wrong answer."""

    def generate(self, prompts, params, progress=None):
        out = []
        for prompt in prompts:
            problem, steps, good = read_prompt(prompt)
            ref = TASK.reference_solution(problem)
            row = []
            for j in range(params.n):
                if good and j % 2 == 0:
                    text = "\n".join(ref[len(steps) :])
                elif good and len(steps) < len(problem.ops):
                    text = ref[len(steps)] + "\nThe answer is 0."
                else:
                    text = "The answer is 0."
                row.append(Completion(text, "eos", len(text)))
            out.append(row)
        return out


def test_omega_new_paths_get_the_truth_and_the_cap(tmp_path, monkeypatch):
    monkeypatch.setattr("prmkit.engines.make_sampler", lambda *a, **k: Branching())
    records = world_solutions(3)
    data = write(tmp_path / "sol.jsonl", records)
    run(recipe(tmp_path, data, "omega", max_rollouts_per_problem=20), "r.yaml")
    out = read_jsonl(tmp_path / "omega" / "labels.jsonl")
    new = [o for o in out if "/omega" in o["id"]]
    assert new and all(o["meta"]["true_labels"] is not None and o["meta"]["derived_from"] for o in new)
    per_problem: dict[str, int] = {}
    for o in out:
        per_problem[o["meta"]["problem_id"]] = (
            per_problem.get(o["meta"]["problem_id"], 0) + o["meta"]["annotation"]["rollouts"]
        )
    assert max(per_problem.values()) <= 20
    metrics = json.loads((tmp_path / "omega" / "metrics.json").read_text())
    assert metrics["audit"]["labels"]["solutions"] == len(out)  # every path, new ones included, is audited
    assert metrics["audit"]["labels"]["step_accuracy"] == 1.0  # "any rollout right" is the truth in this world


def test_omega_resumes_to_the_same_records(tmp_path, oracle):
    data = write(tmp_path / "sol.jsonl", world_solutions())
    r = recipe(tmp_path, data, "omega", chunk_size=4)
    run(r, "r.yaml")
    whole = (tmp_path / "omega" / "labels.jsonl").read_bytes()
    lines = whole.splitlines(keepends=True)
    (tmp_path / "omega" / "labels.jsonl").write_bytes(b"".join(lines[:7]) + lines[7][:30])  # killed mid-problem
    (tmp_path / "omega" / "labels.jsonl.complete").unlink()
    calls = len(oracle.calls)
    run(r, "r.yaml")
    assert (tmp_path / "omega" / "labels.jsonl").read_bytes() == whole
    assert len(oracle.calls) > calls
    calls = len(oracle.calls)
    run(r, "r.yaml")  # finished: nothing is rolled out again
    assert len(oracle.calls) == calls and (tmp_path / "omega" / "labels.jsonl").read_bytes() == whole


# --------------------------------------------------------------------------- shards and their merge


@pytest.mark.parametrize("method", ["binary", "omega"])
def test_annotate_shards_merge_into_the_unsharded_output(tmp_path, monkeypatch, method):
    monkeypatch.setattr("prmkit.engines.make_sampler", lambda *a, **k: Branching())  # omega: new paths too
    data = write(tmp_path / "sol.jsonl", world_solutions())

    def r(name, **extra):
        return AnnotateRecipe.model_validate(
            {
                "output_dir": str(tmp_path / name),
                "solutions": {"path": str(data)},
                "policy": {"model": "oracle"},
                "rollout": {"k": 3},
                "steps": {"style": "lines"},
                "method": {"name": method},
                "chunk_size": 4,
                **extra,
            }
        )

    run(r("all"), "r.yaml")
    for i in range(3):
        run(r(f"s{i}", shard=f"{i}/3"), "r.yaml")
    shards = [str(tmp_path / f"s{i}") for i in range(3)]
    parts = [{o["meta"]["problem_id"] for o in read_jsonl(Path(s) / "labels.jsonl")} for s in shards]
    if method == "omega":  # whole problems per shard, new paths among them
        assert sum(len(p) for p in parts) == len(set().union(*parts)) == 6
        assert any("/omega" in o["id"] for s in shards for o in read_jsonl(Path(s) / "labels.jsonl"))
    run(r("merged", merge_from=shards), "r.yaml")
    assert (tmp_path / "merged" / "labels.jsonl").read_bytes() == (tmp_path / "all" / "labels.jsonl").read_bytes()
    merged = json.loads((tmp_path / "merged" / "metrics.json").read_text())
    whole = json.loads((tmp_path / "all" / "metrics.json").read_text())
    assert merged["cost"] == whole["cost"] and merged["audit"] == whole["audit"]

    with pytest.raises(DataError, match="lacks shard 2/3"):
        run(r("m2", merge_from=shards[:2]), "r.yaml")
    with pytest.raises(DataError, match="in two shards"):
        run(r("m3", merge_from=shards + shards[:1]), "r.yaml")
    run(r("other", shard="2/3", rollout={"k": 4}), "r.yaml")
    with pytest.raises(DataError, match=r"different recipe: rollout.k \(4 -> 3\)"):
        run(r("m4", merge_from=shards[:2] + [str(tmp_path / "other")]), "r.yaml")
    (tmp_path / "s1" / "labels.jsonl.complete").unlink()  # as if that shard had been killed
    with pytest.raises(DataError, match="s1/labels.jsonl: incomplete shard"):
        run(r("m5", merge_from=shards), "r.yaml")
    assert not (tmp_path / "m5" / "labels.jsonl").exists()  # nothing written before every check passed


def test_omega_options_have_the_paper_defaults_and_refuse_unknown_keys(tmp_path):
    r = recipe(tmp_path, tmp_path / "sol.jsonl", "omega")
    o = r.omega
    assert (o.c_puct, o.alpha, o.beta, o.length_penalty, o.max_searches, r.rollout.k) == (
        0.125,
        0.5,
        0.9,
        500.0,
        100,
        3,
    )
    with pytest.raises(Exception, match="c_pcut"):
        recipe(tmp_path, tmp_path / "sol.jsonl", "omega", omega={"c_pcut": 0.2})


# ----------------------------------------------------------------- shared prefixes, right solutions as witnesses


class SlipPolicy(OraclePolicy):
    """The world's arithmetic with slips (a step is off by 1-3 with chance 0.3; a slip is carried on), drawn from
    (prompt seed, sample j) alone, as the real engines draw: `prmkit sample` of it and its rollouts are draws from
    one policy, so a sampled solution's continuation after a prefix is a rollout from that prefix."""

    def generate(self, prompts, params, progress=None):
        import random

        from prmkit.tasks.arithmetic import apply

        out = []
        for prompt, seed in zip(prompts, params.seeds_for(len(prompts), params.seed or 0)):
            head, _, body = prompt.partition("\n")
            problem = TASK.parse_problem(head)
            done = [x for x in body.split("\n") if x]
            row = []
            for j in range(params.first_sample, params.first_sample + params.n):
                rng = random.Random(f"{seed}/{j}")
                value = int(done[-1].rsplit("=", 1)[1]) if done else problem.start
                steps = []
                for op, b in problem.ops[len(done) :]:
                    exact = apply(op, value, b)
                    c = (exact if exact is not None else value) + (
                        rng.choice([-3, -2, -1, 1, 2, 3]) if rng.random() < 0.3 else 0
                    )
                    steps.append(f"{value} {op} {b} = {c}")
                    value = c
                text = "\n".join([*steps, f"The answer is {value}."])
                row.append(Completion(text, "eos", len(text) + 1))
                self.stats.generated_tokens += len(text) + 1
            out.append(row)
        return out


def slip_samples(tmp_path: Path, monkeypatch, problems: int = 60, n: int = 6, temperature: float = 0.7) -> Path:
    """`prmkit sample` of the slip policy on world problems (its recipe.yaml beside samples.jsonl, as in a run)."""
    from prmkit.commands import COMMANDS, load_builtin_commands

    load_builtin_commands()
    monkeypatch.setattr("prmkit.engines.make_sampler", lambda *a, **k: SlipPolicy())
    world = write(tmp_path / "world.jsonl", [TASK.to_record(p) for p in TASK.make_problems(problems, seed=5)])
    sample = COMMANDS.get("sample")
    out = tmp_path / "sample"
    sample.run(
        sample.recipe.model_validate(
            {
                "output_dir": str(out),
                "task": "arithmetic",
                "data": {"path": str(world)},
                "policy": {"model": "slip"},
                "sampling": {"n": n, "temperature": temperature, "max_new_tokens": 128, "stop": []},
                "steps": {"style": "lines"},
            }
        ),
        "s.yaml",
    )
    return out / "samples.jsonl"


def slip_recipe(tmp_path: Path, data: Path, name: str, method: str = "binary", **rollout) -> AnnotateRecipe:
    return recipe(
        tmp_path,
        data,
        method,
        output_dir=str(tmp_path / name),
        policy={"model": "slip"},
        rollout={"k": 4, "temperature": 0.7, "max_new_tokens": 128, "stop": [], **rollout},
    )


def labelled(tmp_path: Path, name: str) -> tuple[list, dict]:
    rows = [json.loads(x) for x in (tmp_path / name / "labels.jsonl").read_text().splitlines()]
    return [d["labels"] for d in rows], json.loads((tmp_path / name / "metrics.json").read_text())


@pytest.mark.parametrize("method", ["binary", "mc"])
def test_solutions_sharing_a_prefix_share_its_rollouts(tmp_path, monkeypatch, method):
    """Sample j of a prefix is one draw whoever asks for it, so drawing it once for every solution through the
    prefix (and every round) leaves each label as it is and costs fewer rollouts."""
    from prmkit.annotate.rollouts import RolloutRunner

    data = slip_samples(tmp_path, monkeypatch)
    run(slip_recipe(tmp_path, data, "shared", method, reuse_solutions=False), "r")
    monkeypatch.setattr(RolloutRunner, "share_prefixes", False)
    run(slip_recipe(tmp_path, data, "own", method, reuse_solutions=False), "r")
    shared, m_shared = labelled(tmp_path, "shared")
    own, m_own = labelled(tmp_path, "own")
    assert shared == own and any(0.0 in x for x in shared)
    assert m_shared["cost"]["generated_tokens"] < 0.9 * m_own["cost"]["generated_tokens"]
    assert m_shared["cost"]["witnesses"] == 0 and m_shared["solution_witnesses"].startswith("off")


def test_right_solutions_as_witnesses_keep_the_labels_as_accurate_for_fewer_tokens(tmp_path, monkeypatch):
    """A right solution through a probed prefix is a successful draw there (the policy's own sample, drawn as
    rollouts are): against the world's truth the labels are at least as accurate (more draws, never fewer),
    and binary search draws fewer fresh rollouts."""
    data = slip_samples(tmp_path, monkeypatch, problems=120)
    for name, reuse in (("reuse", "auto"), ("fresh", False)):  # auto: the sample recipe beside the file matches
        r = slip_recipe(tmp_path, data, name, reuse_solutions=reuse)
        r.method.bisect_draws = None
        run(r, "r")
    _, reuse = labelled(tmp_path, "reuse")
    _, fresh = labelled(tmp_path, "fresh")
    assert reuse["solution_witnesses"].startswith("on (auto")
    assert reuse["cost"]["witnesses"] > 0
    assert reuse["cost"]["generated_tokens"] < 0.9 * fresh["cost"]["generated_tokens"]
    a, b = reuse["audit"]["labels"], fresh["audit"]["labels"]
    assert a["solutions"] == b["solutions"] > 100
    assert a["step_accuracy"] >= b["step_accuracy"] - 0.005
    assert a["first_error_f1"] >= b["first_error_f1"] - 0.01


def test_solutions_count_as_rollouts_only_when_drawn_as_rollouts_are(tmp_path, monkeypatch):
    """auto: off when the sample recipe beside the solutions used other sampling (named in the plan and metrics),
    or when there is none; a right solution is a witness for the other records through its prefixes, never for
    its own, and a wrong one for none."""
    from prmkit.annotate.rollouts import RolloutRunner
    from prmkit.annotate.selection import reuse_solutions

    data = slip_samples(tmp_path, monkeypatch, problems=8, temperature=1.0)
    on, why = reuse_solutions(slip_recipe(tmp_path, data, "x"))
    assert not on and "sampling.temperature 1.0 (rollout.temperature 0.7)" in why
    assert reuse_solutions(slip_recipe(tmp_path, data, "x", temperature=1.0))[0]
    (tmp_path / "elsewhere").mkdir()
    copy = tmp_path / "elsewhere" / "sol.jsonl"
    copy.write_text(data.read_text())
    on, why = reuse_solutions(slip_recipe(tmp_path, copy, "x"))
    assert not on and "no prmkit sample recipe" in why
    assert reuse_solutions(slip_recipe(tmp_path, copy, "x", reuse_solutions=True))[0]
    records = [Record.from_dict(json.loads(x)) for x in data.read_text().splitlines()][:3]
    for r in records[1:]:
        r.steps = list(records[0].steps)
    records[0].correct, records[1].correct, records[2].correct = True, False, False
    spec = slip_recipe(tmp_path, data, "x").rollout
    runner = RolloutRunner(SlipPolicy(), AnnotateRecipe.model_fields["prompt"].default, spec, "lines", None, 4, True)
    pool = runner.pool(records)
    res = runner.run([(r, 1) for r in records], 0, until_success=True, pool=pool)
    assert [r.cost.witnesses for r in res] == [0, 1, 1]  # records 1 and 2 have record 0 as witness
    assert [r.correct > 0 for r in res][1:] == [True, True] and res[0].cost.rollouts > 0
    assert res[1].cost.rollouts == res[2].cost.rollouts == 0
    soft = runner.run([(records[1], 1)], 0, until_success=False, pool=pool)  # soft labels: k fresh draws
    assert soft[0].cost.witnesses == 0 and soft[0].total == 4


class LatePolicy(OraclePolicy):
    """Right from a prefix with no wrong step only from its third draw on (samples 0 and 1 always fail): every
    good prefix a lazy probe meets looks bad on 2 draws, so each search must overturn its boundary."""

    def generate(self, prompts, params, progress=None):
        out = []
        for prompt in prompts:
            problem, _, ok = read_prompt(prompt)
            row = []
            for j in range(params.first_sample, params.first_sample + params.n):
                answer = problem.answer if ok and j >= 2 else problem.answer + 1
                row.append(Completion(f"The answer is {answer}.", "eos", 5))
            out.append(row)
            self.stats.generated_tokens += 5 * params.n
        return out


@pytest.mark.parametrize("policy", [OraclePolicy, LatePolicy])
def test_lazy_confirmation_pins_the_first_error_within_its_worst_case(tmp_path, monkeypatch, policy):
    """bisect_draws 2: bad-looking probes take 2 draws, the boundary the search settles on all k; a success there
    overturns it and the search goes on to its right. Labels equal the truth either way (the oracle: for fewer
    rollouts than every probe at k; the late policy: through overturned boundaries), within the worst case."""
    from prmkit.annotate.methods.binary import _binary_worst_case

    monkeypatch.setattr("prmkit.engines.make_sampler", lambda *a, **k: policy())
    records = [r for r in planted(60) if len(r.steps) >= 3]
    data = write(tmp_path / "sol.jsonl", records)
    costs = {}
    for name, draws in (("lazy", 2), ("exact", None)):
        r = recipe(tmp_path, data, "binary", output_dir=str(tmp_path / name), rollout={"k": 4})
        r.method.bisect_draws = draws
        run(r, "r")
        out = [json.loads(x) for x in (tmp_path / name / "labels.jsonl").read_text().splitlines()]
        assert [o["labels"] for o in out] == [x.labels for x in records], name
        for o in out:
            assert o["meta"]["annotation"]["rollouts"] <= _binary_worst_case(len(o["steps"]), 4, r.method)
        costs[name] = json.loads((tmp_path / name / "metrics.json").read_text())["cost"]["rollouts"]
    if policy is OraclePolicy:
        assert costs["lazy"] < 0.95 * costs["exact"]
    else:  # overturns re-probe with all k: dearer than exact here, where every good prefix fails twice first
        lazy = [json.loads(x) for x in (tmp_path / "lazy" / "labels.jsonl").read_text().splitlines()]
        assert any(
            o["meta"]["annotation"]["rollouts"] > 4 * 2 for o in lazy if o["meta"]["annotation"]["first_error"] > 0
        )
