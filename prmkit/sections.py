"""Recipe sections shared by several stages (data, models, prompts, sampling, steps).

Each stage's recipe composes these, so a key means the same thing in every recipe.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from prmkit.recipe import Section


class DataSpec(Section):
    """Where records come from: a local JSON/JSONL/Parquet file or folder, or a Hub data set id."""

    path: str
    layout: str = "auto"
    """auto, prmkit, gsm8k, math, processbench, prmbench, prm800k, math_shepherd, trl, bigbench_mistake."""
    split: str | None = None
    subset: str | None = None
    limit: int | None = Field(default=None, ge=1)
    options: dict[str, Any] = {}
    """Layout options, e.g. prm800k's neutral_is_good."""


class ModelSpec(Section):
    """A model by local path or Hub id, and the engine that runs it."""

    model: str
    engine: str = "hf"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    trust_remote_code: bool = False
    """Off unless the recipe turns it on: remote code is code."""
    max_batch_size: int = Field(default=64, ge=1)
    """Sequences per forward pass."""

    @field_validator("engine")
    @classmethod
    def _known_engine(cls, value: str) -> str:
        from prmkit.engines import SAMPLERS

        SAMPLERS.get(value)  # raises a RecipeError listing the engines
        return value


class PromptSpec(Section):
    """How a problem becomes the policy's prompt."""

    template: str = "{problem}\n"
    """Python format string over the record's fields (problem)."""
    chat_template: bool = False
    """Wrap the rendered text as a user turn with the tokenizer's chat template."""
    system: str | None = None


class SamplingSpec(Section):
    n: int = Field(default=4, ge=1)
    temperature: float = Field(default=0.7, ge=0.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    max_new_tokens: int = Field(default=256, ge=1)
    stop: list[str] = []


class StepSpec(Section):
    """How solution text is cut into steps (see prmkit.steps)."""

    style: str = "paragraphs"
    tag: str | None = None
