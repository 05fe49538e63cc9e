"""The world stage's recipe: the embedded task, its difficulty, its splits and its planted-error benchmark."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from prmkit.recipe import Section
from prmkit.tasks import get_task


class PlantedSpec(Section):
    n: int = Field(default=400, ge=0)
    """Solutions in the benchmark."""
    correct_share: float = Field(default=0.5, ge=0.0, le=1.0)
    """Share of them with no error."""
    types: list[str] | None = None
    """Planted error kinds to draw from (default: all the task knows)."""


class WorldRecipe(Section):
    seed: int = 0
    """Seed of every random choice of the run (sampling, initialisation, data order): same seed, same outputs."""
    output_dir: str
    """Folder of this run's outputs, recipe.yaml and manifest.json; a rerun of the same recipe resumes it."""
    task: str = "arithmetic"
    """The embedded task family (arithmetic)."""
    difficulty: str | dict[str, Any] = "medium"
    """A preset name or a mapping of the task's difficulty knobs (optionally with `preset:`)."""
    splits: dict[str, int] = {"train": 2000, "test": 200}
    """Problems per split (e.g. {train: 20000, test: 400}); splits never share a problem."""
    planted: PlantedSpec = PlantedSpec()
    """The planted-error benchmark (ProcessBench layout, true first errors known)."""

    @field_validator("task")
    @classmethod
    def _known_task(cls, value: str) -> str:
        get_task(value)
        return value

    @field_validator("splits")
    @classmethod
    def _sizes(cls, value: dict[str, int]) -> dict[str, int]:
        bad = {k: v for k, v in value.items() if v < 0 or not k.isidentifier()}
        if bad:
            raise ValueError(f"split names must be identifiers and sizes >= 0, got {bad}")
        return value
