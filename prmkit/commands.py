"""The registry of CLI subcommands. A stage registers its recipe model and its run function here;
the CLI builds one Typer command per entry, so adding a stage never touches the CLI code."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prmkit.recipe import Section
from prmkit.registry import Registry


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    recipe: type[Section]
    run: Callable[[Any, str], dict[str, Any]]
    """Runs the stage from a validated recipe and its path; returns the summary rows shown at the end."""
    plan: Callable[[Any], dict[str, Any]] | None = None
    """What a run would do (models, data, counts) without loading a model: `--dry-run`."""
    shard_files: tuple[str, ...] = ()
    """The JSONL outputs of one shard (a stage with them runs under `launcher: {name: ray}`; the driver counts
    their lines for its progress bar)."""
    from_path: Callable[[str], dict[str, Any]] | None = None
    """`prmkit CMD FILE_OR_RUN_DIR`: the recipe built from a records file or a run folder instead of a YAML recipe
    (overrides still apply)."""
    output_key: str = "output_dir"
    """The recipe key `--output` sets."""
    key_options: tuple[str, ...] = ()
    """Top-level recipe keys also given as `--KEY VALUE` (export: `--to trl`), the same as the override `KEY=VALUE`."""


COMMANDS: Registry[Command] = Registry("command")


def summary_of(doc: str) -> str:
    """A stage's help line from its module docstring: the first paragraph, less the `prmkit CMD RECIPE`: prefix."""
    first = " ".join(doc.strip().split("\n\n")[0].split())
    return first.split(": ", 1)[1] if first.startswith("`prmkit") and ": " in first else first


def register(command: Command) -> Command:
    return COMMANDS.register(command.name)(command)


def load_builtin_commands() -> None:
    """Import the stage modules, which register their commands."""
    import prmkit.annotate.command  # noqa: F401
    import prmkit.bench.command  # noqa: F401
    import prmkit.export.command  # noqa: F401
    import prmkit.report.command  # noqa: F401
    import prmkit.sample.command  # noqa: F401
    import prmkit.score.command  # noqa: F401
    import prmkit.search.command  # noqa: F401
    import prmkit.train.command  # noqa: F401
    import prmkit.view.command  # noqa: F401
    import prmkit.world.command  # noqa: F401
