"""The export stage's recipe: which labelled records, to which layout, with hard or soft labels."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from prmkit.recipe import Section
from prmkit.sections import DataSpec


class ExportRecipe(Section):
    seed: int = 0
    """Unused by export (nothing is random); kept so every stage's manifest records one."""
    output_dir: str
    """Folder of the exported data set: train.jsonl or data/train.parquet, README.md (its data card)."""
    data: DataSpec
    """Step-labelled records: annotate's labels.jsonl, or any layout prmkit reads with labels."""
    to: Literal["trl", "openrlhf", "hf"] = "trl"
    """trl: {prompt, completions, labels} JSONL (TRL's stepwise supervision); openrlhf: {input, value} JSONL with a
    placeholder token after each step (OpenRLHF's ProcessRewardDataset); hf: the same rows as TRL's, as Parquet."""
    labels: Literal["hard", "soft"] = "hard"
    """hard: one bool per step (label >= 0.5); soft: the label's float (annotate's Monte Carlo value where kept)."""
    placeholder_token: str = Field(default="ки", min_length=1)
    """openrlhf: the token after each step where the step's label is read (its --placeholder_token)."""
    reward_tokens: tuple[str, str] = ("+", "-")
    """openrlhf, hard labels: the good and bad label strings (its --reward_tokens)."""
    push_to_hub: str | None = None
    """A Hub data set repo (`user/name`) to upload output_dir to after the export; the Hub must answer first
    (checked before any work: a machine with no network gets a clear error, not a half-done run)."""
