"""Output folders: one writer at a time, never the current folder, never a folder of someone else's files;
a failed or interrupted run says so in its manifest; a training run does not resume under another recipe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from prmkit.errors import RecipeError
from prmkit.manifest import RunConflict, lock_output_dir, release_output_dir

PRMKIT = [sys.executable, "-m", "prmkit"]


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PRMKIT_QUIET": "1", "COLUMNS": "400"}
    return subprocess.run([*PRMKIT, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def world_recipe(path: Path, out: str) -> Path:
    path.write_text(f"output_dir: '{out}'\nsplits: {{train: 20, test: 5}}\nplanted: {{n: 10}}\n")
    return path


def test_a_second_run_on_a_locked_folder_fails_naming_the_pid(tmp_path):
    out = tmp_path / "w"
    out.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time; from pathlib import Path; from prmkit.manifest import lock_output_dir; "
                f"lock_output_dir(Path({str(out)!r})); print('locked', flush=True); time.sleep(60)"
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        res = run_cli("world", str(world_recipe(tmp_path / "r.yaml", str(out))))
        assert res.returncode == 1
        assert f"is being written by another prmkit run (pid {holder.pid})" in " ".join(res.stderr.split())
        assert not (out / "train.jsonl").exists()
    finally:
        holder.kill()
        holder.wait()
    # the kernel released the dead holder's lock: the same command now runs
    assert run_cli("world", str(tmp_path / "r.yaml")).returncode == 0


def test_the_lock_is_reentrant_in_one_process_and_released_at_the_end(tmp_path):
    first = lock_output_dir(tmp_path)
    assert lock_output_dir(tmp_path) is first
    release_output_dir(tmp_path)
    code = (
        "import sys; from pathlib import Path; from prmkit.manifest import lock_output_dir; "
        f"lock_output_dir(Path({str(tmp_path)!r}))"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0  # free again
    assert issubclass(RunConflict, Exception)


@pytest.mark.parametrize("out", ["", ".", "./"])
def test_an_empty_or_current_output_dir_is_refused(tmp_path, out):
    mine = tmp_path / "recipe.yaml"
    mine.write_text("my own file\n")
    res = run_cli("world", str(world_recipe(tmp_path / "r.yaml", out)), cwd=tmp_path)
    assert res.returncode == 2 and "is the current folder" in res.stderr
    assert mine.read_text() == "my own file\n" and not (tmp_path / "manifest.json").exists()


def test_outputs_without_a_manifest_are_not_adopted(tmp_path):
    out = tmp_path / "w"
    out.mkdir()
    (out / "train.jsonl").write_text('{"id": "someone else"}\n')
    res = run_cli("world", str(world_recipe(tmp_path / "r.yaml", str(out))))
    assert res.returncode == 2 and "holds outputs that no prmkit run wrote here" in " ".join(res.stderr.split())
    assert (out / "train.jsonl").read_text() == '{"id": "someone else"}\n'


def test_a_failed_run_writes_failed_into_its_manifest(tmp_path):
    """A bench run that fails after claiming its folder (an empty subset): exit 1, manifest.json says failed."""
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    recipe = tmp_path / "b.yaml"
    recipe.write_text(
        f"output_dir: {tmp_path / 'out'}\nbenchmark: processbench\n"
        f"data: {{path: {empty}, layout: processbench}}\npredictions: {empty}\n"
    )
    res = run_cli("bench", str(recipe))
    assert res.returncode == 1
    data = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert data["status"] == "failed" and "no records" in data["error"] and data["finished"]


def test_mark_unfinished_writes_status_and_error(tmp_path):
    from prmkit.manifest import _ACTIVE, RunManifest, mark_unfinished
    from prmkit.recipe import validate
    from prmkit.world.recipe import WorldRecipe

    recipe = validate(WorldRecipe, {"output_dir": str(tmp_path / "w")}, "t")
    m = RunManifest(tmp_path / "w", "world", recipe, None)
    assert m in _ACTIVE
    mark_unfinished("interrupted", "interrupted (Ctrl-C or SIGINT)")
    data = json.loads((tmp_path / "w" / "manifest.json").read_text())
    assert data["status"] == "interrupted" and data["error"].startswith("interrupted") and data["finished"]
    assert m not in _ACTIVE
    # and the folder is free again for another process
    code = (
        "from pathlib import Path; from prmkit.manifest import lock_output_dir; "
        f"lock_output_dir(Path({str(tmp_path / 'w')!r}))"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_a_checkpoint_is_not_resumed_under_another_recipe(tmp_path):
    from prmkit.manifest import check_same_recipe
    from prmkit.recipe import validate
    from prmkit.train.recipe import TrainRecipe

    def recipe(lr: float) -> TrainRecipe:
        return validate(
            TrainRecipe,
            {
                "output_dir": str(tmp_path),
                "objective": "sft",
                "data": {"path": "x"},
                "init": {"model": "m"},
                "training": {"learning_rate": lr},
            },
            "t",
        )

    from prmkit.recipe import dump_recipe

    (tmp_path / "recipe.yaml").write_text(dump_recipe(recipe(1e-3)))
    (tmp_path / "manifest.json").write_text("{}")
    (tmp_path / "checkpoint-100").mkdir()
    check_same_recipe(tmp_path, recipe(1e-3), frozenset())  # the same recipe resumes
    with pytest.raises(RecipeError, match=r"training.learning_rate \(0.001 -> 0.0002\)"):
        check_same_recipe(tmp_path, recipe(2e-4), frozenset())


def test_lock_file_does_not_disturb_a_rerun(tmp_path):
    out = tmp_path / "w"
    recipe = world_recipe(tmp_path / "r.yaml", str(out))
    assert run_cli("world", str(recipe)).returncode == 0
    assert (out / ".prmkit.lock").exists()
    start = time.time()
    assert run_cli("world", str(recipe)).returncode == 0
    assert time.time() - start < 60


def test_a_null_id_is_refused_naming_file_and_line(tmp_path):
    from prmkit.data.layouts import load_records
    from prmkit.errors import DataError

    path = tmp_path / "d.jsonl"
    path.write_text('{"id": "a", "problem": "p", "steps": ["s"]}\n{"id": null, "problem": "p", "steps": ["s"]}\n')
    with pytest.raises(DataError, match=r"d\.jsonl line 2: .*field 'id' is None"):
        list(load_records(path))


def test_a_model_folder_without_a_tokenizer_says_so(tmp_path):
    from prmkit.errors import ModelError
    from prmkit.models.loading import load_tokenizer
    from prmkit.models.tiny import make_tiny_model

    folder = make_tiny_model(tmp_path / "m", hidden_size=32, num_layers=1, num_heads=2, seed=0)
    for f in folder.iterdir():
        if f.name.startswith(("tokenizer", "vocab", "merges", "special_tokens", "chat_template")):
            f.unlink()
    with pytest.raises(ModelError, match=r"the model folder has no tokenizer"):
        load_tokenizer(folder)


def test_a_resume_refuses_inputs_changed_under_it(tmp_path):
    """Kill, replace the data file, rerun: refused, naming the input; the same content under a new mtime resumes."""
    from prmkit.manifest import RunManifest, check_same_recipe
    from prmkit.recipe import validate
    from prmkit.score.recipe import ScoreRecipe

    data = tmp_path / "d.jsonl"
    data.write_text('{"id": "a", "problem": "p", "steps": ["s"]}\n')
    recipe = validate(
        ScoreRecipe,
        {"output_dir": str(tmp_path / "out"), "data": {"path": str(data)}, "prm": {"model": "some/prm"}},
        "t",
    )
    m = RunManifest(tmp_path / "out", "score", recipe, None)
    (tmp_path / "out" / "scored.jsonl").write_text('{"id": "a"}\n')
    m.finish({}, status="interrupted")
    data.write_text(data.read_text())  # same bytes, new mtime
    check_same_recipe(tmp_path / "out", recipe, frozenset())
    data.write_text('{"id": "b", "problem": "q", "steps": ["t"]}\n')
    with pytest.raises(RecipeError, match=r"made from other inputs: data.path \(.*d\.jsonl changed"):
        check_same_recipe(tmp_path / "out", recipe, frozenset())


def test_score_refuses_to_read_its_own_output(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "scored.jsonl").write_text('{"id": "a", "problem": "p", "steps": ["s"]}\n')
    recipe = tmp_path / "s.yaml"
    recipe.write_text(f"output_dir: {out}\ndata: {{path: {out / 'scored.jsonl'}}}\nprm: {{model: some/prm}}\n")
    res = run_cli("score", str(recipe))
    assert res.returncode == 2 and "score would read its own output" in " ".join(res.stderr.split())


def test_a_huge_value_in_an_error_is_cut(tmp_path):
    from prmkit.recipe import load_recipe
    from prmkit.sample.recipe import SampleRecipe

    path = tmp_path / "r.yaml"
    path.write_text("output_dir: out\ndata: {path: d.jsonl}\npolicy: {model: m}\nseed: '" + "9" * 5000 + "x'\n")
    with pytest.raises(RecipeError) as err:
        load_recipe(SampleRecipe, path)
    assert len(str(err.value)) < 600 and "(5,003 characters)" in str(err.value)


@pytest.mark.parametrize("stage", ["annotate", "bench"])
def test_empty_input_is_refused(tmp_path, stage):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    recipe = tmp_path / "r.yaml"
    if stage == "annotate":
        recipe.write_text(f"output_dir: {tmp_path / 'out'}\nsolutions: {{path: {empty}}}\npolicy: {{model: m}}\n")
    else:
        recipe.write_text(
            f"output_dir: {tmp_path / 'out'}\nbenchmark: processbench\ndata: {{path: {empty}, "
            f"layout: processbench}}\npredictions: {empty}\n"
        )
    res = run_cli(stage, str(recipe))
    assert res.returncode == 1 and ("empty" in res.stderr or "no records" in res.stderr), res.stderr


def test_a_wrong_format_for_a_prmkit_checkpoint_is_refused(tmp_path):
    from prmkit.engines.hf_scorer import resolve_format
    from prmkit.errors import ModelError

    (tmp_path / "prmkit_prm.json").write_text(json.dumps({"format": "prmkit", "head": "token_classification"}))
    with pytest.raises(ModelError, match="trained by prmkit as format 'prmkit'.*not 'math_shepherd'; scoring"):
        resolve_format(str(tmp_path), "math_shepherd")
    assert resolve_format(str(tmp_path), "prmkit").name == "prmkit"


def test_truncated_weights_name_the_folder(tmp_path):
    from prmkit.errors import ModelError
    from prmkit.models.loading import load_causal_lm
    from prmkit.models.tiny import make_tiny_model

    folder = make_tiny_model(tmp_path / "m", hidden_size=32, num_layers=1, num_heads=2, seed=0)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ModelError, match=r"model weights in '.*/m' are corrupt or truncated"):
        load_causal_lm(folder, device="cpu")


# --------------------------------------------------------------------------- sharding never changes a sample


def _sample_recipe(world: Path, out: Path, **extra):
    from prmkit.sample.recipe import SampleRecipe

    return SampleRecipe.model_validate(
        {
            "seed": 3,
            "output_dir": str(out),
            "task": "arithmetic",
            "data": {"path": str(world / "problems.jsonl")},
            "policy": {"model": str(world / "policy"), "device": "cpu"},
            "sampling": {"n": 3, "temperature": 1.0, "max_new_tokens": 24},
            "steps": {"style": "lines"},
            "chunk_size": 4,
            **extra,
        }
    )


def _annotate_recipe(samples: Path, world: Path, out: Path, method: str, **extra):
    from prmkit.annotate.recipe import AnnotateRecipe

    return AnnotateRecipe.model_validate(
        {
            "seed": 3,
            "output_dir": str(out),
            "solutions": {"path": str(samples)},
            "policy": {"model": str(world / "policy"), "device": "cpu"},
            "rollout": {"k": 2, "max_new_tokens": 16},
            "steps": {"style": "lines"},
            "method": {"name": method},
            "chunk_size": 5,
            **extra,
        }
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    from prmkit.models.tiny import make_world

    return make_world(tmp_path_factory.mktemp("world"), 12)


@pytest.mark.parametrize("method", ["mc", "binary", "omega"])
def test_a_three_shard_merge_equals_the_unsharded_run_byte_for_byte(world, tmp_path, method):
    """Each record's sampling seed comes from the run seed and the record id: shards (with another chunk size
    and batch size) then merge into exactly the unsharded samples and labels."""
    from prmkit.annotate.command import run as annotate
    from prmkit.sample.command import run as sample

    sample(_sample_recipe(world, tmp_path / "all"), "r.yaml")
    for i in range(3):
        sample(
            _sample_recipe(
                world,
                tmp_path / f"s{i}",
                shard=f"{i}/3",
                chunk_size=1 + i,
                policy={"model": str(world / "policy"), "device": "cpu", "max_batch_size": 2},
            ),
            "r.yaml",
        )
    shards = [str(tmp_path / f"s{i}") for i in range(3)]
    sample(_sample_recipe(world, tmp_path / "merged", merge_from=shards), "r.yaml")
    whole = (tmp_path / "all" / "samples.jsonl").read_bytes()
    assert len(whole.splitlines()) == 36 and len({r["answer"] for r in map(json.loads, whole.splitlines())}) > 3
    assert (tmp_path / "merged" / "samples.jsonl").read_bytes() == whole
    samples = tmp_path / "all" / "samples.jsonl"

    annotate(_annotate_recipe(samples, world, tmp_path / "a-all", method), "r.yaml")
    for i in range(3):
        annotate(
            _annotate_recipe(samples, world, tmp_path / f"a{i}", method, shard=f"{i}/3", chunk_size=2 + i), "r.yaml"
        )
    annotate(
        _annotate_recipe(
            samples, world, tmp_path / "a-merged", method, merge_from=[str(tmp_path / f"a{i}") for i in range(3)]
        ),
        "r.yaml",
    )
    labels = (tmp_path / "a-all" / "labels.jsonl").read_bytes()
    assert len(labels.splitlines()) >= 36 and len(set(labels.splitlines())) > 1
    assert (tmp_path / "a-merged" / "labels.jsonl").read_bytes() == labels


def test_a_prefix_gets_the_same_rollouts_whatever_else_is_in_the_call():
    from prmkit.engines import keyed_seeds

    assert keyed_seeds(3, ["a", "b", "a"])[0] == keyed_seeds(3, ["a"])[0] == keyed_seeds(3, ["c", "a"])[1]
    assert len(set(keyed_seeds(3, ["a", "b", "a"]))) == 3  # a repeat in one call gets a fresh seed
    assert keyed_seeds(3, ["a"]) != keyed_seeds(4, ["a"])


# --------------------------------------------------------------------------- full disk, unwritable folder


def test_a_full_disk_names_the_file_and_keeps_what_was_written(tmp_path):
    """/dev/full fails every write with ENOSPC, as a full disk does."""
    from prmkit.data.shards import ResumableWriter
    from prmkit.errors import StorageError

    path = tmp_path / "samples.jsonl"
    writer = ResumableWriter(path)
    writer.write({"id": "a", "x": 1})
    writer._fh = open("/dev/full", "a", encoding="utf-8")
    with pytest.raises(
        StorageError,
        match=r"samples.jsonl: No space left on device \(ENOSPC\); the disk is full: "
        r"free space, then run the same command again to resume",
    ):
        writer.write({"id": "b", "x": 2})
    writer.close()
    assert ResumableWriter(path).done_ids == {"a"}


@pytest.mark.skipif(not Path("/sys").is_dir(), reason="needs a folder no one may write (/sys on Linux)")
def test_an_unwritable_output_folder_is_named(tmp_path):
    res = run_cli("world", str(world_recipe(tmp_path / "r.yaml", "/sys/prmkit-out")))
    assert res.returncode == 1, res.stderr
    message = " ".join(res.stderr.split())
    assert "output_dir /sys/prmkit-out: cannot write here" in message and "Traceback" not in message
    assert "choose another output_dir" in message
