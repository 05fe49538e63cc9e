"""`prmkit train` through the real CLI: a SIGKILLed run, started again with the same command, resumes from
its last checkpoint and finishes; recipe errors are one line and exit code 2."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from prmkit.formats import PrmkitFormat, format_for_checkpoint
from prmkit.tasks import get_task

ROOT = Path(__file__).parents[1]


def prmkit(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PRMKIT_QUIET": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "prmkit", *args],
        cwd=ROOT,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kw,
    )


def test_kill_then_resume(tmp_path):
    data = tmp_path / "planted.jsonl"
    data.write_text("".join(r.to_json() + "\n" for r in get_task("arithmetic").planted_errors(48, 2, "easy")))
    recipe = {
        "output_dir": str(tmp_path / "out"),
        "objective": "prm",
        "data": {"path": str(data)},
        "max_length": 256,
        "init": {"tiny": {"hidden_size": 64, "num_layers": 2, "num_heads": 2, "intermediate_size": 128}},
        "prm": {"head": "lm"},
        "training": {
            "max_steps": 400,
            "batch_size": 4,
            "learning_rate": 1e-3,
            "logging_steps": 5,
            "save_steps": 5,
            "threads": 1,
        },
    }
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    first = prmkit("train", str(path))
    states = lambda: list((tmp_path / "out").glob("checkpoint-*/prmkit_train_state.json"))  # noqa: E731
    deadline = time.time() + 120
    while not states() and first.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    _, err = first.communicate()
    assert states(), f"no checkpoint before the kill: {err[-2000:]}"
    assert not (tmp_path / "out" / "final").exists()
    second = prmkit("train", str(path), "training.max_steps=30")
    out, err = second.communicate(timeout=180)
    assert second.returncode == 0, err[-2000:]
    assert "labels dropped by max_length" in out and "resuming from" in err
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["train"]["steps"] == 30
    assert Path(metrics["train"]["resumed_from"]).name.startswith("checkpoint-")
    assert int(Path(metrics["train"]["resumed_from"]).name.split("-")[1]) >= 5
    assert format_for_checkpoint(tmp_path / "out" / "final") == PrmkitFormat(head="lm")
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["status"] == "complete" and (tmp_path / "out" / "recipe.yaml").is_file()


def test_recipe_error_is_one_line(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "output_dir": str(tmp_path),
                "objective": "prm",
                "data": {"path": "x"},
                "init": {"model": "m"},
                "training": {"learnig_rate": 1},
            }
        )
    )
    proc = prmkit("train", str(path))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "unknown key 'training.learnig_rate' (did you mean 'training.learning_rate'?)" in err
    assert "Traceback" not in err
