"""The CLI as a user meets it: exit codes, one-line errors, dry runs, and a SIGKILL-and-resume run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from prmkit.models.tiny import make_world

PRMKIT = [sys.executable, "-m", "prmkit"]


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PRMKIT_QUIET": "1"}
    return subprocess.run([*PRMKIT, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """A small embedded world and an (untrained) tiny policy whose tokenizer covers its alphabet."""
    return make_world(tmp_path_factory.mktemp("world"), 60, text_seed=None)


def sample_recipe(world: Path, out: Path, **extra: str) -> Path:
    text = (
        f"seed: 3\noutput_dir: {out}\ntask: arithmetic\n"
        f"data: {{path: {world / 'problems.jsonl'}}}\n"
        f"policy: {{model: {world / 'policy'}, device: cpu}}\n"
        "sampling: {n: 3, temperature: 1.0, max_new_tokens: 24}\n"
        "steps: {style: lines}\nchunk_size: 4\n"
    )
    path = out.parent / f"{out.name}.yaml"
    path.write_text(text)
    return path


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_sample_end_to_end_writes_records_metrics_and_manifest(world, tmp_path):
    out = tmp_path / "run"
    res = run_cli("sample", str(sample_recipe(world, out)), "data.limit=5")
    assert res.returncode == 0, res.stderr
    records = [json.loads(x) for x in lines(out / "samples.jsonl")]
    assert len(records) == 15 and records[0]["id"].endswith("/s0")
    assert all("true_first_error" in r["meta"] for r in records)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["samples"] == 15 and metrics["generated_tokens"] > 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["seed"] == 3 and "torch" in manifest["versions"]
    assert "limit: 5" in (out / "recipe.yaml").read_text()


def test_rerun_of_a_complete_run_samples_nothing(world, tmp_path):
    out = tmp_path / "run"
    recipe = sample_recipe(world, out)
    assert run_cli("sample", str(recipe), "data.limit=4").returncode == 0
    before = (out / "samples.jsonl").read_bytes()
    res = run_cli("sample", str(recipe), "data.limit=4")
    assert res.returncode == 0
    assert (out / "samples.jsonl").read_bytes() == before
    assert json.loads((out / "metrics.json").read_text())["compute"]["generated_tokens_this_run"] == 0


def test_sigkill_then_resume_equals_uninterrupted_run(world, tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert run_cli("sample", str(sample_recipe(world, whole)), "data.limit=24").returncode == 0
    expected = (whole / "samples.jsonl").read_bytes()

    recipe = sample_recipe(world, killed)
    env = {**os.environ, "PRMKIT_QUIET": "1"}
    proc = subprocess.Popen(
        [*PRMKIT, "sample", str(recipe), "data.limit=24"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    target = killed / "samples.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline:
        if target.exists() and len(target.read_bytes().splitlines()) >= 12:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = len(target.read_bytes().splitlines())
    assert 12 <= partial < 72, "the kill should land mid-run"

    res = run_cli("sample", str(recipe), "data.limit=24")
    assert res.returncode == 0, res.stderr
    assert target.read_bytes() == expected
    resumed = json.loads((killed / "metrics.json").read_text())["compute"]["records_resumed"]
    assert partial - 1 <= resumed <= partial  # a torn last line is dropped and regenerated


def test_recipe_typo_is_exit_2_with_file_key_and_hint(world, tmp_path):
    recipe = sample_recipe(world, tmp_path / "run")
    recipe.write_text(recipe.read_text().replace("temperature", "temprature"))
    res = run_cli("sample", str(recipe))
    assert res.returncode == 2
    assert str(recipe) in res.stderr and "sampling.temprature" in res.stderr
    assert "did you mean 'sampling.temperature'" in res.stderr and "Traceback" not in res.stderr


def test_unknown_engine_lists_allowed(world, tmp_path):
    res = run_cli("sample", str(sample_recipe(world, tmp_path / "run")), "policy.engine=hff")
    assert res.returncode == 2 and "unknown sampler engine 'hff'" in res.stderr and "did you mean 'hf'" in res.stderr


def test_broken_data_line_names_file_and_line(world, tmp_path):
    data = tmp_path / "broken.jsonl"
    good = lines(world / "problems.jsonl")
    data.write_text("\n".join(good[:2] + ['{"id": "x", "problem": '] + good[2:4]) + "\n")
    res = run_cli("sample", str(sample_recipe(world, tmp_path / "run")), f"data.path={data}")
    assert res.returncode == 1
    assert "broken.jsonl line 3" in res.stderr and "Traceback" not in res.stderr


def test_missing_model_is_one_clear_line(world, tmp_path):
    res = run_cli("sample", str(sample_recipe(world, tmp_path / "run")), f"policy.model={tmp_path / 'nope'}")
    assert res.returncode == 1
    assert "nope" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "run" / "samples.jsonl").exists() or not lines(tmp_path / "run" / "samples.jsonl")


def test_dry_run_loads_no_model(world, tmp_path):
    res = run_cli(
        "sample", str(sample_recipe(world, tmp_path / "run")), "--dry-run", f"policy.model={tmp_path / 'not-loaded'}"
    )
    assert res.returncode == 0, res.stderr
    assert "max generated tokens" in res.stdout and "4320" in res.stdout.replace(",", "")
    assert not (tmp_path / "run").exists()


def test_world_command_writes_splits_and_processbench(tmp_path):
    recipe = tmp_path / "world.yaml"
    recipe.write_text(f"output_dir: {tmp_path / 'w'}\nsplits: {{train: 50, test: 10}}\nplanted: {{n: 20}}\n")
    res = run_cli("world", str(recipe))
    assert res.returncode == 0, res.stderr
    train = {json.loads(x)["problem"] for x in lines(tmp_path / "w" / "train.jsonl")}
    test = {json.loads(x)["problem"] for x in lines(tmp_path / "w" / "test.jsonl")}
    assert len(train) == 50 and len(test) == 10 and not train & test
    rows = json.loads((tmp_path / "w" / "processbench.json").read_text())
    assert len(rows) == 20 and set(rows[0]) == {"id", "generator", "problem", "steps", "final_answer_correct", "label"}


def test_usage_errors_exit_2():
    assert run_cli("sample").returncode == 2
    assert run_cli("nosuchcommand", "x.yaml").returncode == 2
    res = run_cli("--version")
    assert res.returncode == 0 and "prmkit" in res.stdout


def test_json_and_quiet_summaries_for_ci_jobs(world, tmp_path):
    recipe = sample_recipe(world, tmp_path / "run")
    res = run_cli("sample", str(recipe), "data.limit=2", "--json")
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert rows["problems"] == 2 and rows["samples"] == 6
    plan = json.loads(run_cli("sample", str(recipe), "data.limit=2", "--dry-run", "--json").stdout)
    assert plan["recipe"] == "valid" and plan["problems"] == "2"
    quiet = run_cli("sample", str(recipe), "data.limit=2", "--quiet")
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == ""


def test_progress_is_one_plain_line_per_chunk_when_stderr_is_not_a_terminal(world, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PRMKIT_QUIET"}
    res = subprocess.run(
        [*PRMKIT, "sample", str(sample_recipe(world, tmp_path / "run")), "data.limit=8"],
        capture_output=True,
        text=True,
        env={**env, "NO_COLOR": "1"},
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    progress = [line for line in res.stderr.splitlines() if line.startswith("sampling: ")]
    assert [p.split(" (")[0] for p in progress] == ["sampling: 4/8", "sampling: 8/8"]  # chunk_size 4
    assert "\x1b[" not in res.stdout + res.stderr  # NO_COLOR: no escape codes
