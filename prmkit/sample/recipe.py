"""The sample stage's recipe: what to sample from which policy, and how."""

from __future__ import annotations

from pydantic import Field

from prmkit.launcher import LauncherSpec
from prmkit.recipe import Section
from prmkit.sections import DataSpec, ModelSpec, PromptSpec, SamplingSpec, StepSpec


class SampleRecipe(Section):
    seed: int = 0
    """Seed of every random choice of the run (sampling, initialisation, data order): same seed, same outputs."""
    output_dir: str
    """Folder of this run's outputs, recipe.yaml and manifest.json; a rerun of the same recipe resumes it."""
    data: DataSpec
    """The problems (any layout with a problem and, to grade, a reference answer)."""
    policy: ModelSpec
    """The model that writes the solutions, and its engine."""
    prompt: PromptSpec = PromptSpec()
    sampling: SamplingSpec = SamplingSpec()
    """How each problem's N solutions are sampled."""
    steps: StepSpec = StepSpec()
    task: str | None = None
    """A task family with an exact checker (e.g. arithmetic): adds each sample's true first error."""
    shard: str | None = None
    """`i/n`: this run handles problems k with k mod n == i; `prmkit sample` with `merge_from` joins shards."""
    merge_from: list[str] | None = None
    """Output folders of shard runs: join their samples into output_dir (in data order); nothing is sampled."""
    launcher: LauncherSpec = LauncherSpec()
    chunk_size: int = Field(default=16, ge=1)
    """Problems per engine call (and per resume unit)."""


RESUME_SAFE = frozenset(
    {"policy.device", "policy.max_batch_size", "policy.dtype", "policy.prefix_cache_mb", "chunk_size"}
)
"""Keys that may change between a killed run and its resumption without changing its records."""
