"""The view stage's recipe: which records, optionally which PRM scores them, and where the page goes."""

from __future__ import annotations

from pydantic import Field

from prmkit.recipe import Section
from prmkit.score.recipe import PRMSpec
from prmkit.sections import DataSpec


class ViewRecipe(Section):
    seed: int = 0
    """Seed of the PRM's scoring where it samples (a generative verifier); a discriminative PRM is deterministic."""
    data: DataSpec
    """The solutions to show: annotate's labels.jsonl, score's scored.jsonl, sample's samples.jsonl, search's
    results.jsonl, or any layout prmkit reads."""
    prm: PRMSpec | None = None
    """Score the steps with this PRM for the page (records that carry `scores` keep theirs when null)."""
    output: str = "view.html"
    """The page to write (one file: data, styles and script inline; no network)."""
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    """A step whose label or PRM score is below this is an error (the first one is marked)."""
    title: str = "prmkit step viewer"
    """The page's heading."""
    chunk_size: int = Field(default=64, ge=1)
    """Records per PRM call when scoring."""
