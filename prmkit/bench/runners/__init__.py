"""Benchmarks by name. Each runner turns a bench recipe into metrics, a markdown report, plots and table rows.

Scores a runner needs are computed once and kept under `output_dir/scored/<name>.jsonl` (resumable), so a
killed bench run continues where it stopped and a rerun with another threshold scores nothing again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prmkit.data.shards import ResumableWriter
from prmkit.errors import RecipeError
from prmkit.records import Record
from prmkit.registry import Registry

if TYPE_CHECKING:
    from prmkit.bench.recipe import BenchRecipe


@dataclass
class Outcome:
    """What a benchmark run produced: metrics.json content, report.md text, and the rows of the final table."""

    metrics: dict[str, Any]
    report: str
    rows: dict[str, Any]


@dataclass
class Context:
    recipe: BenchRecipe
    out_dir: Path
    compute: list[dict[str, Any]] = field(default_factory=list)
    cluster: dict[str, Any] | None = None
    """The Ray cluster the scoring ran on (launcher ray), for the manifest."""
    _scorer: Any = None

    def scorer(self) -> Any:
        from prmkit.score.recipe import build_scorer
        from prmkit.score.scoring import LazyScorer

        prm = self.recipe.prm
        if prm is None:
            raise RecipeError(f"benchmark {self.recipe.benchmark}: the records carry no scores; add a prm: section")
        if self._scorer is None:
            self._scorer = LazyScorer(lambda: build_scorer(prm, self.recipe.seed))
        return self._scorer

    def score(self, records: list[Record], name: str) -> dict[str, list[float]]:
        """Step scores by record id, scoring (and caching) what `scored/<name>.jsonl` lacks."""
        from prmkit.score.scoring import read_scored, score_into

        path = self.out_dir / "scored" / f"{name}.jsonl"
        launcher = self.recipe.launcher
        with ResumableWriter(path) as writer:
            if launcher.name == "ray" and any(r.id not in writer for r in records):
                from prmkit.launcher import score_on_ray

                self.scorer()  # no prm: section is the same error as in a local run (nothing is loaded here)
                assert self.recipe.prm is not None
                parts, self.cluster = score_on_ray(
                    launcher, self.recipe.prm, self.recipe.seed, records, writer, self.recipe.chunk_size, name
                )
                self.compute.extend(parts)
            else:
                self.compute.append(
                    score_into(records, writer, self.scorer(), self.recipe.chunk_size, f"scoring {name}")
                )
        wanted = {r.id for r in records}
        return {r.id: r.scores or [] for r in read_scored(path) if r.id in wanted}

    def close(self) -> None:
        if self._scorer is not None:
            self._scorer.close()


BENCHMARKS: Registry[Callable[[Context], Outcome]] = Registry("benchmark")


def _load_builtin() -> None:
    import prmkit.bench.runners.bestofn  # noqa: F401
    import prmkit.bench.runners.prmbench  # noqa: F401
    import prmkit.bench.runners.processbench  # noqa: F401


_load_builtin()
