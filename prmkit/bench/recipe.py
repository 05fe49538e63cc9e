"""The `prmkit bench` recipe: which benchmark, on which data, with a PRM or a predictions file."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from prmkit.launcher import LauncherSpec
from prmkit.recipe import Section, registered
from prmkit.score.recipe import PRMSpec
from prmkit.sections import DataSpec


class ThresholdSpec(Section):
    """A step is an error when its score is under the threshold: fixed, or the best-F1 one on one subset."""

    fixed: float | None = Field(default=None, ge=0.0, le=1.0)
    """A fixed threshold (e.g. 0.5)."""
    tune_on: str | None = None
    """Pick the threshold with the best F1 on this subset (reported as tuned)."""

    @model_validator(mode="after")
    def _one(self) -> ThresholdSpec:
        if self.fixed is not None and self.tune_on is not None:
            raise ValueError("give either threshold.fixed or threshold.tune_on, not both")
        return self

    @property
    def value(self) -> float:
        return 0.5 if self.fixed is None else self.fixed


class ProcessBenchSpec(Section):
    subsets: list[str] | None = None
    """Subset names (file stems in data.path); default: every file there."""


class PRMBenchSpec(Section):
    files: list[str] | None = None
    """File names in data.path; default: every .jsonl there except subset400.jsonl (its own task upstream)."""
    step_rule: Literal["score", "difference"] = "score"
    """How a step is judged valid, as PRMBench's per-model wrappers do: `score` (score > threshold.fixed, most
    PRMs, 0.5) or `difference` (Skywork's wrapper: the first score, then each score minus the one before, >
    difference_threshold)."""
    difference_threshold: float = -0.05
    """The `difference` rule's threshold (Skywork in PRMBench: -0.05)."""


class BestOfNSpec(Section):
    ns: list[int] | None = None
    """The N to report; default 1, 2, 4, ... up to the samples drawn per problem."""
    trials: int = Field(default=32, ge=1)
    """Random subsets of size N drawn (seeded) from the one large draw, averaged, for each N below the full draw."""
    aggregates: list[str] = ["min", "last", "prod", "mean"]
    """Step scores -> solution score for best-of-N (min, last, prod, mean)."""
    weighted_aggregate: Annotated[str, registered("prmkit.engines.scoring:AGGREGATES")] = "last"
    """The aggregate whose scores weight the PRM-weighted majority vote."""

    @field_validator("aggregates")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        from prmkit.engines.scoring import AGGREGATES

        for name in value:
            AGGREGATES.get(name)
        return value


class BenchRecipe(Section):
    seed: int = 0
    """Seed of every random choice of the run (sampling, initialisation, data order): same seed, same outputs."""
    output_dir: str
    """Folder of this run's outputs, recipe.yaml and manifest.json; a rerun of the same recipe resumes it."""
    benchmark: Annotated[str, registered("prmkit.bench.runners:BENCHMARKS")]
    """processbench, prmbench or bestofn."""
    data: DataSpec
    """The benchmark's data (ProcessBench or PRMBench files or Hub id; best-of-N: a samples.jsonl)."""
    prm: PRMSpec | None = None
    """The PRM to score with; left out when `predictions` is given or (bestofn) the records carry scores."""
    predictions: str | None = None
    """processbench: JSONL of {id, prediction} (first-error index, -1 none); prmbench: JSONL of {id, scores}."""
    threshold: ThresholdSpec = ThresholdSpec()
    """ProcessBench/PRMBench: the step score below which a step counts as an error."""
    chunk_size: int = Field(default=64, ge=1)
    """Records per scorer call (and per resume unit)."""
    launcher: LauncherSpec = LauncherSpec()
    """Where the benchmark's scoring runs: here, or as one Ray task per shard of the records (then joined)."""
    processbench: ProcessBenchSpec = ProcessBenchSpec()
    """ProcessBench's options."""
    prmbench: PRMBenchSpec = PRMBenchSpec()
    """PRMBench's options."""
    bestofn: BestOfNSpec = BestOfNSpec()
    """Best-of-N's options."""

    @model_validator(mode="after")
    def _source(self) -> BenchRecipe:
        if self.prm is not None and self.predictions is not None:
            raise ValueError("give either prm (score with a model) or predictions (a file), not both")
        if self.prm is None and self.predictions is None and self.benchmark != "bestofn":
            raise ValueError(f"benchmark {self.benchmark}: give a prm: section or a predictions: file")
        return self
