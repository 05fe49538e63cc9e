"""Recipe keys documented from the code: every key of every stage has a docstring that reaches run time, and
docs/recipes.md is exactly what `prmkit recipe-docs` prints."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from prmkit.commands import COMMANDS, load_builtin_commands
from prmkit.recipe_docs import keys, render

DOCS = Path(__file__).resolve().parents[1] / "docs" / "recipes.md"


def test_every_recipe_key_of_every_stage_has_a_docstring():
    load_builtin_commands()
    missing = [
        f"{name}: {row['key']}" for name in COMMANDS for row in keys(COMMANDS.get(name).recipe) if not row["doc"]
    ]
    assert not missing, f"document these recipe keys (a docstring under the field): {missing}"


def test_the_docs_file_is_what_the_code_says():
    assert DOCS.read_text(encoding="utf-8") == render(), (
        "docs/recipes.md is stale: regenerate it with `prmkit recipe-docs > docs/recipes.md`"
    )


def test_a_key_shows_its_type_default_and_doc():
    text = render()
    assert "| `sampling.temperature` | `float` | `0.7` | Sampling temperature; 0 is greedy. |" in text
    assert '| `policy.dtype` | `"auto" \\| "float32" \\| "bfloat16" \\| "float16"` | `"auto"` |' in text


def test_the_cli_prints_it_and_every_stage_help_points_at_it():
    from prmkit.cli import build_app

    app = build_app()
    runner = CliRunner()
    out = runner.invoke(app, ["recipe-docs"])
    assert out.exit_code == 0 and out.output == render()
    helped = runner.invoke(app, ["sample", "--help"], env={"COLUMNS": "200"})
    assert helped.exit_code == 0 and "prmkit recipe-docs" in helped.output
