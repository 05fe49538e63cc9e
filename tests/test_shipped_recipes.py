"""Every shipped recipe stays valid: each one must validate against the recipe model of a stage."""

from __future__ import annotations

from pathlib import Path

import pytest

from prmkit.commands import COMMANDS, load_builtin_commands
from prmkit.errors import RecipeError
from prmkit.recipe import load_recipe

RECIPES = sorted((Path(__file__).parents[1] / "recipes").rglob("*.yaml"))

# which stage runs each shipped recipe (by file name)
STAGE_OF = {
    "world": "world", "policy": "train", "prm": "train", "sample": "sample", "sample_train": "sample",
    "annotate": "annotate", "search": "search", "report": "report",
}


def stage_for(path: Path) -> str:
    if path.stem in STAGE_OF:
        return STAGE_OF[path.stem]
    if path.stem.startswith("score"):
        return "score"
    return "bench"


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
