"""`prmkit search` as a command: an end-to-end run on a tiny policy and a tiny PRM checkpoint, exact resumption
after a kill, shards and their merge, and bad input refused before any compute is spent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_search import FakePolicy, FakePRM

from prmkit.errors import DataError, ModelError, RecipeError
from prmkit.models.tiny import make_tiny_model
from prmkit.recipe import load_recipe
from prmkit.search import command
from prmkit.search.recipe import SearchRecipe
from prmkit.tasks import get_task

TASK = get_task("arithmetic")
METHODS = {
    "best_of_n": {"aggregate": "min"},
    "weighted_majority": {},
    "majority": {},
    "beam": {"beam_width": 2},
    "dvts": {"beam_width": 2},
    "early_reject": {"beam_width": 2, "partial_tokens": 3},
}


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    """Four arithmetic problems, a tiny char-level policy and a tiny 2-class token-classification PRM on it."""
    import torch
    from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer

    root = tmp_path_factory.mktemp("search")
    problems = TASK.make_problems(4, seed=2)
    with open(root / "problems.jsonl", "w") as fh:
        for p in problems:
            fh.write(TASK.to_record(p).to_json() + "\n")
    texts = [TASK.prompt(p) + "\n".join(TASK.reference_solution(p)) for p in TASK.make_problems(40, seed=1)]
    policy = make_tiny_model(root / "policy", texts=texts, hidden_size=64, num_layers=2, num_heads=2, seed=0)
    config = AutoConfig.from_pretrained(policy)
    config.num_labels = 2
    torch.manual_seed(1)
    prm = AutoModelForTokenClassification.from_config(config)
    prm.save_pretrained(root / "prm")
    AutoTokenizer.from_pretrained(policy).save_pretrained(root / "prm")
    meta = {"format": "prmkit", "objective": "prm", "head": "token_classification", "step_separator": "\n"}
    (root / "prm" / "prmkit_prm.json").write_text(json.dumps(meta))
    return root


def recipe_file(root: Path, out: Path, **overrides) -> Path:
    data = {
        "seed": 1,
        "output_dir": str(out),
        "data": {"path": str(root / "problems.jsonl")},
        "policy": {"model": str(root / "policy"), "device": "cpu"},
        "prm": {"model": str(root / "prm"), "device": "cpu"},
        "steps": {"style": "lines"},
        "sampling": {"temperature": 1.0, "step_max_tokens": 12, "max_steps": 6, "max_new_tokens": 40},
        "methods": METHODS,
        "budgets": [2, 4],
        "chunk_size": 4,
    }
    for key, value in overrides.items():
        data[key] = value
    path = out.parent / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def read(path: Path, drop_wall: bool = True) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    if drop_wall:
        for r in rows:
            r["meta"].pop("wall_s")
    return rows


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PRMKIT_QUIET": "1"}
    return subprocess.run([sys.executable, "-m", "prmkit", *args], capture_output=True, text=True, env=env, timeout=300)


def test_search_end_to_end_with_a_tiny_policy_and_prm_and_a_torn_resume(models, tmp_path):
    out = tmp_path / "run"
    cfg = recipe_file(models, out)
    res = run_cli("search", str(cfg))
    assert res.returncode == 0, res.stderr
    rows = read(out / "results.jsonl")
    assert len(rows) == 4 * len(METHODS) * 2
    assert len({r["id"] for r in rows}) == len(rows)
    for r in rows:
        m = r["meta"]
        assert m["generated_tokens"] > 0
        assert (m["scored_tokens"] == 0) == (m["method"] == "majority")
        assert r["correct"] in (True, False) and r["reference"] is not None
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["methods"]) == set(METHODS)
    beam4 = metrics["methods"]["beam"]["budgets"]["4"]
    assert beam4["problems"] == 4 and 0.0 <= beam4["accuracy"] <= 1.0
    bon = metrics["methods"]["best_of_n"]["budgets"]
    assert bon["4"]["generated_tokens_per_problem"] > bon["2"]["generated_tokens_per_problem"]
    assert metrics["totals"]["generated_tokens"] == sum(r["meta"]["generated_tokens"] for r in rows)
    report = (out / "report.md").read_text()
    assert "| beam | 4 |" in report and "accuracy_vs_tokens.png" in report
    assert (out / "accuracy_vs_tokens.png").stat().st_size > 1000
    assert json.loads((out / "manifest.json").read_text())["status"] == "complete"
    # killed while writing a line of the first chunk: the rerun regenerates exactly the missing records
    raw = (out / "results.jsonl").read_bytes().splitlines(keepends=True)
    (out / "results.jsonl").write_bytes(b"".join(raw[:13]) + raw[13][:25])
    res = run_cli("search", str(cfg))
    assert res.returncode == 0, res.stderr
    assert read(out / "results.jsonl") == rows


# --------------------------------------------------------------------------- with scripted engines


def fake_recipe(tmp_path: Path, out: Path, n_problems: int = 5, **overrides) -> SearchRecipe:
    data = tmp_path / "q.jsonl"
    data.write_text(
        "".join(json.dumps({"id": f"q{k}", "problem": f"Q{k}", "reference": "5"}) + "\n" for k in range(n_problems))
    )
    body = {
        "output_dir": str(out),
        "data": {"path": str(data)},
        "policy": {"model": "fake"},
        "prm": {"model": "fake", "format": "prmkit"},
        "steps": {"style": "lines"},
        "sampling": {"step_max_tokens": 32},
        "methods": {
            "beam": {"beam_width": 2},
            "dvts": {"beam_width": 2},
            "bon": {"name": "best_of_n"},
            "er": {"name": "early_reject", "beam_width": 2, "partial_tokens": 2},
        },
        "budgets": [2, 4],
        "chunk_size": 2,
        **overrides,
    }
    path = tmp_path / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(body))
    return load_recipe(SearchRecipe, path)


class Killed(FakePolicy):
    """Stops the run (as a kill would) at its n-th sampler call."""

    def __init__(self, calls: int) -> None:
        super().__init__()
        self.left = calls

    def generate(self, prompts, params, progress=None):
        self.left -= 1
        if self.left < 0:
            raise KeyboardInterrupt
        return super().generate(prompts, params, progress)


def test_kill_and_resume_gives_exactly_the_uninterrupted_records(tmp_path, monkeypatch):
    monkeypatch.setattr(command, "_engines", lambda recipe: (FakePolicy(), FakePRM()))
    command.run(fake_recipe(tmp_path, tmp_path / "whole"), "r.yaml")
    whole = read(tmp_path / "whole" / "results.jsonl")
    assert len(whole) == 5 * 4 * 2
    monkeypatch.setattr(command, "_engines", lambda recipe: (Killed(9), FakePRM()))
    with pytest.raises(KeyboardInterrupt):
        command.run(fake_recipe(tmp_path, tmp_path / "cut"), "r.yaml")
    partial = read(tmp_path / "cut" / "results.jsonl")
    assert 0 < len(partial) < len(whole)
    monkeypatch.setattr(command, "_engines", lambda recipe: (FakePolicy(), FakePRM()))
    rows = command.run(fake_recipe(tmp_path, tmp_path / "cut"), "r.yaml")
    assert rows["resumed results"] == len(partial)
    assert read(tmp_path / "cut" / "results.jsonl") == whole
    accuracy = [
        {
            k: v["budgets"]["4"]["accuracy"]
            for k, v in json.loads((tmp_path / d / "metrics.json").read_text())["methods"].items()
        }
        for d in ("whole", "cut")
    ]
    assert accuracy[0] == accuracy[1] and accuracy[0]["beam"] > 0
    # a rerun of the finished search samples nothing and leaves the results as they were
    before = (tmp_path / "cut" / "results.jsonl").read_bytes()
    monkeypatch.setattr(command, "_engines", lambda recipe: (Killed(0), FakePRM()))
    command.run(fake_recipe(tmp_path, tmp_path / "cut"), "r.yaml")
    assert (tmp_path / "cut" / "results.jsonl").read_bytes() == before


def test_shards_cover_every_problem_once_and_merge(tmp_path, monkeypatch):
    monkeypatch.setattr(command, "_engines", lambda recipe: (FakePolicy(), FakePRM()))
    for i in range(2):
        command.run(fake_recipe(tmp_path, tmp_path / f"s{i}", shard=f"{i}/2"), "r.yaml")
    ids = [{r["meta"]["problem_id"] for r in read(tmp_path / f"s{i}" / "results.jsonl")} for i in range(2)]
    assert ids == [{"q0", "q2", "q4"}, {"q1", "q3"}]
    merged = fake_recipe(tmp_path, tmp_path / "all", merge_from=[str(tmp_path / "s0"), str(tmp_path / "s1")])
    command.run(merged, "r.yaml")
    rows = read(tmp_path / "all" / "results.jsonl")
    assert len(rows) == 5 * 4 * 2
    assert json.loads((tmp_path / "all" / "metrics.json").read_text())["totals"]["records"] == 40
    again = fake_recipe(tmp_path, tmp_path / "dup", merge_from=[str(tmp_path / "s0"), str(tmp_path / "s0")])
    with pytest.raises(DataError, match="in two shards"):
        command.run(again, "r.yaml")


# --------------------------------------------------------------------------- bad input, before any compute


@pytest.fixture
def no_compute(monkeypatch):
    def refuse(recipe):
        raise AssertionError("engines were built before the input was checked")

    monkeypatch.setattr(command, "_engines", refuse)


def test_prm_format_that_does_not_match_its_checkpoint(models, tmp_path, no_compute):
    cfg = recipe_file(models, tmp_path / "o", prm={"model": str(models / "prm"), "format": "math_shepherd"})
    with pytest.raises(ModelError, match="does not match the checkpoint.*trained with format 'prmkit'"):
        command.run(load_recipe(SearchRecipe, cfg), str(cfg))
    cfg = recipe_file(
        models,
        tmp_path / "o2",
        prm={"model": str(models / "prm"), "format": "prmkit", "format_options": {"step_separator": "\n\n"}},
    )
    with pytest.raises(ModelError, match="step_separator"):
        command.run(load_recipe(SearchRecipe, cfg), str(cfg))
    cfg = recipe_file(models, tmp_path / "o3", prm={"model": str(models / "policy")})
    with pytest.raises(ModelError, match="prmkit_prm.json"):
        command.run(load_recipe(SearchRecipe, cfg), str(cfg))


def test_policy_without_chat_template(models, tmp_path, no_compute):
    cfg = recipe_file(models, tmp_path / "o", prompt={"chat_template": True})
    with pytest.raises(RecipeError, match="no chat template"):
        command.run(load_recipe(SearchRecipe, cfg), str(cfg))


def test_empty_step_separator_and_empty_problem(models, tmp_path, no_compute):
    cfg = recipe_file(models, tmp_path / "o", steps={"style": "tag", "tag": ""})
    with pytest.raises(RecipeError, match="non-empty tag"):
        command.run(load_recipe(SearchRecipe, cfg), str(cfg))
    data = tmp_path / "bad.jsonl"
    data.write_text(
        json.dumps({"id": "a", "problem": "Q", "reference": "1"})
        + "\n"
        + json.dumps({"id": "b", "problem": "  ", "reference": "1"})
        + "\n"
    )
    cfg = recipe_file(models, tmp_path / "o2", data={"path": str(data)})
    with pytest.raises(DataError, match="empty problem"):
        command.run(load_recipe(SearchRecipe, cfg), str(cfg))


def test_cli_error_is_one_line_and_dry_run_plans(models, tmp_path):
    cfg = recipe_file(models, tmp_path / "o", prm={"model": str(models / "prm"), "format": "rlhflow"})
    res = run_cli("search", str(cfg))
    assert res.returncode == 1 and "does not match" in res.stderr and "Traceback" not in res.stderr
    res = run_cli("search", str(recipe_file(models, tmp_path / "p")), "--dry-run")
    assert res.returncode == 0, res.stderr
    assert "results" in res.stdout and "48" in res.stdout


def test_shards_with_another_chunk_size_find_the_same_solutions(models, tmp_path):
    """Seeds come from (run seed, problem id, method, budget, round), never from a chunk's place: two shards run
    with chunk_size 1 and merged give the records of one unsharded run (wall times aside; PRM scores agree to
    float32 noise, since a batch of another shape rounds the PRM's matmuls differently)."""
    command.run(load_recipe(SearchRecipe, recipe_file(models, tmp_path / "whole")), "r.yaml")
    for i in range(2):
        command.run(
            load_recipe(SearchRecipe, recipe_file(models, tmp_path / f"s{i}", shard=f"{i}/2", chunk_size=1)), "r.yaml"
        )
    merged = recipe_file(
        models, tmp_path / "merged", merge_from=[str(tmp_path / "s0"), str(tmp_path / "s1")], chunk_size=1
    )
    command.run(load_recipe(SearchRecipe, merged), "r.yaml")

    def records(folder: str) -> list[dict]:
        rows = sorted(read(tmp_path / folder / "results.jsonl"), key=lambda r: r["id"])
        for r in rows:
            r["scores"] = [round(x, 5) for x in r["scores"] or []]
        return rows

    whole = records("whole")
    assert len(whole) == 4 * len(METHODS) * 2
    assert records("merged") == whole
