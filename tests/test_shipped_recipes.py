"""Every shipped recipe stays valid: each one validates against its stage's recipe model, and
`prmkit STAGE RECIPE --dry-run` plans it (models, data, counts) offline, from a fresh clone with no runs/."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from prmkit.commands import COMMANDS, load_builtin_commands
from prmkit.errors import RecipeError
from prmkit.recipe import load_recipe

RECIPES = sorted((Path(__file__).parents[1] / "recipes").rglob("*.yaml"))

# which stage runs each shipped recipe, by the start of its file name (sample_train.yaml, annotate_mc.yaml, ...);
# any other name (recipes/processbench/*.yaml) is a bench recipe
STAGE_OF = {
    "world": "world",
    "policy": "train",
    "prm": "train",
    "train": "train",
    "sample": "sample",
    "annotate": "annotate",
    "search": "search",
    "export": "export",
    "score": "score",
    "bench": "bench",
    "report": "report",
    "view": "view",
}


def stage_for(path: Path) -> str:
    head = path.stem.replace("-", "_").split("_")[0]
    return STAGE_OF.get(head, "bench")


def test_there_are_shipped_recipes():
    assert len(RECIPES) >= 10


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_recipe_validates(path):
    load_builtin_commands()
    command = COMMANDS.get(stage_for(path))
    try:
        load_recipe(command.recipe, path)
    except RecipeError as exc:
        pytest.fail(f"{path} is not a valid `prmkit {command.name}` recipe: {exc}")


def named_inputs(path: Path) -> list[str]:
    """The models and data a recipe names (what its plan must show)."""
    from prmkit.recipe import resolve_vars

    data = resolve_vars(yaml.safe_load(path.read_text(encoding="utf-8")), str(path))
    names = []
    for section in ("policy", "prm"):
        if isinstance(data.get(section), dict) and data[section].get("model"):  # a train recipe's prm: has none
            names.append(data[section]["model"])
    init = data.get("init")
    if isinstance(init, str):
        names.append(init)
    elif isinstance(init, dict) and init.get("model"):
        names.append(init["model"])
    if isinstance(data.get("judge"), dict):
        names.append(data["judge"]["model"]["model"])
    for section in ("data", "solutions"):
        if isinstance(data.get(section), dict):
            names.append(data[section]["path"])
    return names


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_recipe_dry_runs_offline_from_a_fresh_clone(path, tmp_path, monkeypatch):
    """No runs/ folder (inputs of later stages are not there yet), no Hub: the plan still names models and data."""
    from typer.testing import CliRunner

    import prmkit.data.readers as readers
    from prmkit.cli import build_app

    def no_hub(*args, **kwargs):
        raise AssertionError("a dry run must not read a Hub data set")

    monkeypatch.setattr(readers, "_read_hub", no_hub)
    monkeypatch.chdir(tmp_path)  # recipes name runs/... relative to the working folder: here none exists
    monkeypatch.setenv("COLUMNS", "1000")  # one line per table row, so names are not folded
    result = CliRunner().invoke(build_app(), [stage_for(path), str(path.resolve()), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "(dry run)" in result.output
    for name in named_inputs(path):
        assert name in result.output, f"the plan of {path} does not name {name!r}:\n{result.output}"
    if stage_for(path) == "world":
        assert "arithmetic" in result.output
    assert not (tmp_path / "runs").exists(), "a dry run must write nothing"


def test_dry_run_is_quick_and_imports_no_engine():
    """The plan of the heaviest shipped recipe (policy, PRM and search on the Hub's GSM8K) imports no torch,
    transformers, vllm or datasets, and the whole command takes a few seconds at most."""
    recipe = Path(__file__).parents[1] / "recipes" / "gsm8k" / "search.yaml"
    code = (
        "import sys\n"
        "from prmkit.cli import main\n"
        f"sys.argv = ['prmkit', 'search', {str(recipe)!r}, '--dry-run']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "heavy = [m for m in ('torch', 'transformers', 'vllm', 'datasets') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    env = {**os.environ, "COLUMNS": "1000", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    wall = time.perf_counter() - t0
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Qwen/Qwen2.5-Math-PRM-7B" in res.stdout and "openai/gsm8k" in res.stdout
    assert wall < 20, f"a dry run took {wall:.1f} s"
