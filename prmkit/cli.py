"""The `prmkit` command line: one subcommand per registered stage, each `prmkit CMD RECIPE [key.sub=value ...]`.

Exit codes: 0 success, 2 usage or recipe errors, 1 failures at run time, 130 interrupted. Errors are one
clear message; `--debug` shows the traceback.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import typer

from prmkit import __version__
from prmkit.commands import COMMANDS, Command, load_builtin_commands
from prmkit.console import console, summary_table
from prmkit.errors import PrmkitError, describe_os_error
from prmkit.launcher import launch
from prmkit.manifest import mark_unfinished
from prmkit.recipe import load_recipe

app = typer.Typer(
    name="prmkit",
    help="Process supervision toolkit: step labels, PRM training, step scores, benchmarks, PRM-guided search.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"prmkit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of one-line errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    _state["debug"] = debug


def _show(title: str, rows: dict, quiet: bool, as_json: bool, justify: str = "right") -> None:
    """The summary: a table, JSON on stdout (--json, for CI jobs), or nothing (--quiet)."""
    if as_json:
        typer.echo(json.dumps(rows, default=str))
    elif not quiet:
        summary_table(title, rows, justify="left" if justify == "left" else "right")


def _fail(message: str, code: int) -> None:
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def resolve_recipe(command: Command, path: Path, overrides: list[str]) -> Any:
    """The validated recipe: a YAML recipe file, or (for a stage that takes one) a records file or run folder."""
    if command.from_path is not None and path.suffix not in (".yaml", ".yml"):
        from prmkit.errors import RecipeError
        from prmkit.recipe import apply_overrides, validate

        if not path.exists():
            what = f"prmkit {command.name} takes a recipe, a records file or a run folder"
            raise RecipeError(f"{path}: not found ({what})")
        return validate(command.recipe, apply_overrides(command.from_path(str(path)), overrides), str(path))
    return load_recipe(command.recipe, path, overrides)


def _make_runner(command: Command):
    def runner(
        recipe: Path = typer.Argument(..., help="The YAML recipe (view, export: or a records file or run folder)."),  # noqa: B008 - typer's idiom
        overrides: list[str] | None = typer.Argument(None, help="Dotted overrides, e.g. sampling.n=8."),  # noqa: B008
        dry_run: bool = typer.Option(False, "--dry-run", help="Check the recipe and print the plan; load no model."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress and no summary; errors still print."),
        as_json: bool = typer.Option(False, "--json", help="Print the summary (or the plan) as JSON on stdout."),
        output: str | None = typer.Option(None, "--output", "-o", help=f"Set the recipe's {command.output_key}."),
    ) -> None:
        if quiet or as_json:
            os.environ["PRMKIT_QUIET"] = "1"
        try:
            extra = [f"{command.output_key}={output}"] if output is not None else []
            resolved = resolve_recipe(command, recipe, [*(overrides or []), *extra])
            if dry_run:
                plan = {"recipe": "valid", **(command.plan(resolved) if command.plan else {})}
                _show(f"prmkit {command.name} (dry run): {recipe}", plan, quiet, as_json, justify="left")
                return
            rows = launch(command, resolved, str(recipe))
            _show(f"prmkit {command.name}: done", rows, quiet, as_json)
        except PrmkitError as exc:
            mark_unfinished("failed", str(exc))
            if _state["debug"]:
                raise
            _fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            mark_unfinished("interrupted", "interrupted (Ctrl-C or SIGINT)")
            _fail("interrupted; run the same command again to resume", 130)
        except typer.Exit:
            raise
        except OSError as exc:  # a full disk or a read-only folder met outside prmkit's own writers
            mark_unfinished("failed", describe_os_error(exc))
            if _state["debug"]:
                raise
            _fail(describe_os_error(exc), 1)
        except Exception as exc:  # a bug or an environment failure: still one line unless --debug
            mark_unfinished("failed", f"{type(exc).__name__}: {exc}")
            if _state["debug"]:
                raise
            _fail(f"{type(exc).__name__}: {exc} (rerun with --debug for the traceback)", 1)

    runner.__doc__ = command.help
    return runner


RECIPE_DOCS_HINT = "Every recipe key with its type, default and meaning: `prmkit recipe-docs` (docs/recipes.md)."


def recipe_docs() -> None:
    """Print every recipe key of every stage (type, default, what it does) as markdown."""
    from prmkit.recipe_docs import render

    typer.echo(render(), nl=False)


def build_app() -> typer.Typer:
    """Register one Typer command per stage (once; tests call this repeatedly)."""
    if _state.get("built"):
        return app
    _state["built"] = True
    load_builtin_commands()
    for name in COMMANDS:
        command = COMMANDS.get(name)
        app.command(name=name, help=command.help, epilog=RECIPE_DOCS_HINT)(_make_runner(command))
    app.command(name="recipe-docs")(recipe_docs)
    return app


def quiet_libraries() -> None:
    """Library progress bars and retry chatter would bury prmkit's own progress and errors."""
    import logging
    import os

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    for name in ("huggingface_hub", "httpx", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)


def key_options_as_overrides(argv: list[str]) -> list[str]:
    """`prmkit export DIR --to trl` -> `prmkit export DIR to=trl`: a stage's `key_options` are overrides spelt as
    flags (dashes for underscores), so they go through the recipe schema like any override."""
    load_builtin_commands()
    name = next((a for a in argv if not a.startswith("-")), None)
    if name is None or name not in COMMANDS or not COMMANDS.get(name).key_options:
        return argv
    flags = {"--" + key.replace("_", "-"): key for key in COMMANDS.get(name).key_options}
    out, i = [], 0
    while i < len(argv):
        arg = argv[i]
        flag, eq, value = arg.partition("=")
        if flag in flags and (eq or i + 1 < len(argv)):
            out.append(f"{flags[flag]}={value if eq else argv[i + 1]}")
            i += 1 if eq else 2
            continue
        out.append(arg)
        i += 1
    return out


def main() -> None:
    import sys

    quiet_libraries()
    build_app()(args=key_options_as_overrides(sys.argv[1:]), prog_name="prmkit")
