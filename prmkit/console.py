"""Terminal output shared by every stage: progress bars on long loops and a summary table at the end."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

console = Console(stderr=True)


class RateColumn(ProgressColumn):
    """Items per second (blank until rich has a speed estimate)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:.1f}/s", style="cyan")


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[Any]:
    """A rich progress bar (items done, rate, ETA); yields `advance(n)`. Quiet when PRMKIT_QUIET is set. When
    stderr is not a terminal (a CI log, a file), one plain line per advance instead, so logs stay readable."""
    if os.environ.get("PRMKIT_QUIET"):
        yield lambda n=1: None
        return
    if not sys.stderr.isatty():
        done = [0]
        start = time.perf_counter()

        def line(n: int = 1) -> None:
            if n:
                done[0] += n
                of = f"/{total}" if total is not None else ""
                print(
                    f"{description}: {done[0]}{of} ({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True
                )

        yield line
        return
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=console, transient=not sys.stderr.isatty()) as prog:
        task = prog.add_task(description, total=total)
        yield lambda n=1: prog.advance(task, n)


def summary_table(title: str, rows: dict[str, Any], justify: Literal["left", "right"] = "right") -> None:
    """A short two-column table of what a run produced (values right-aligned; a dry run's plan: left)."""
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value", justify=justify, overflow="fold")
    for key, value in rows.items():
        if isinstance(value, float):
            value = f"{value:.4g}"
        table.add_row(key, str(value))
    Console().print(table)
