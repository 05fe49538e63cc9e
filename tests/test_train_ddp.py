"""Data-parallel training: two CPU processes (gloo) launched by `accelerate launch` train ONE model:
both ranks end with identical weights, and the loss goes down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from prmkit.tasks import get_task

DRIVER = """
import hashlib, json, os, sys
import torch
from prmkit.recipe import load_recipe
from prmkit.train.fit import fit
from prmkit.train.recipe import TrainRecipe
from prmkit.train.trainer import release_process_group

f = fit(load_recipe(TrainRecipe, sys.argv[1]))
model = f.trainer.model
digest = hashlib.sha256()
for name, p in sorted(model.state_dict().items()):
    digest.update(name.encode()); digest.update(p.detach().cpu().float().numpy().tobytes())
losses = [h["loss"] for h in f.trainer.state.log_history if "loss" in h]
rank = f.trainer.args.process_index
out = {"rank": rank, "world": f.trainer.args.world_size, "digest": digest.hexdigest(), "losses": losses,
       "steps": f.trainer.state.global_step}
open(os.path.join(sys.argv[2], f"rank{rank}.json"), "w").write(json.dumps(out))
release_process_group()
"""


@pytest.mark.slow
def test_two_cpu_processes_train_one_model(tmp_path):
    task = get_task("arithmetic")
    data = tmp_path / "planted.jsonl"
    data.write_text("".join(r.to_json() + "\n" for r in task.planted_errors(64, 5, "easy", correct_share=0.4)))
    recipe = {
        "output_dir": str(tmp_path / "out"),
        "objective": "prm",
        "data": {"path": str(data)},
        "max_length": 256,
        "init": {"tiny": {"hidden_size": 64, "num_layers": 2, "num_heads": 2, "intermediate_size": 128}},
        "training": {"max_steps": 12, "batch_size": 8, "learning_rate": 1e-2, "logging_steps": 1, "save_steps": 100},
    }
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    (tmp_path / "driver.py").write_text(DRIVER)
    env = {**os.environ, "PRMKIT_QUIET": "1", "OMP_NUM_THREADS": "1"}
    # accelerate's multi-process launcher (torchrun underneath); with no GPU the ranks talk over gloo on CPU.
    # (`--cpu` would pick the single-process launcher.)
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        "29517",
        str(tmp_path / "driver.py"),
        str(tmp_path / "r.yaml"),
        str(tmp_path),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240, cwd=Path(__file__).parents[1])
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert {r["world"] for r in ranks} == {2} and {r["steps"] for r in ranks} == {12}
    assert ranks[0]["digest"] == ranks[1]["digest"]
    losses = ranks[0]["losses"]
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3, losses
