"""Training objectives by name (`objective:` in a train recipe): prm, implicit, likelihood, sft.

An objective owns the three things that differ between them: which model class it trains, how a
record becomes training features, and the loss. The Trainer, checkpointing and the CLI are shared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prmkit.registry import Registry

if TYPE_CHECKING:
    from prmkit.records import Record
    from prmkit.train.recipe import TrainRecipe


@dataclass
class EncodeStats:
    """What encoding dropped, so truncation is reported and never silent."""

    records: int = 0
    examples: int = 0
    labels: int = 0
    dropped_labels: int = 0
    """Step labels cut off by max_length (sequences are cut at a step boundary)."""
    skipped_records: int = 0
    """Records with nothing left to train on after the cut (the prompt alone hits max_length)."""
    truncated_records: int = 0
    tokens: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class Encoded:
    features: list[dict[str, Any]] = field(default_factory=list)
    stats: EncodeStats = field(default_factory=EncodeStats)
    kept: list[int] = field(default_factory=list)
    """Index (in the input records) of the record behind each feature."""


class Objective:
    """Base of every objective. `model_kind` is "causal_lm" or "token_classification"."""

    name: str = ""
    model_kind: str = "causal_lm"
    trains_policy: bool = False
    """A policy, not a PRM: its final checkpoint is measured by solving held-out problems (eval.task)."""

    def __init__(self, recipe: TrainRecipe) -> None:
        self.recipe = recipe

    def setup(self, model: Any, tokenizer: Any, init_path: str) -> None:
        """Check the model and tokenizer fit the objective (e.g. one-token labels); load anything else needed."""
        self.tokenizer = tokenizer

    def encode(self, records: list[Record], tokenizer: Any, source: str) -> Encoded:
        raise TypeError(f"objective {self.name!r} does not define encode")

    def compute_loss(self, model: Any, batch: dict[str, Any]) -> Any:
        raise TypeError(f"objective {self.name!r} does not define compute_loss")

    def evaluate(self, model: Any, tokenizer: Any, records: list[Record], batch_size: int) -> dict[str, Any]:
        """Held-out metrics (no gradient); {} when the objective has none for these records."""
        return {}

    def finish(self, model: Any) -> None:
        """After training, before the final checkpoint: anything fitted on the trained model (default: nothing)."""

    def metadata(self) -> dict[str, Any]:
        """The objective's part of prmkit_prm.json."""
        return {}


OBJECTIVES: Registry[type[Objective]] = Registry("training objective")


def make_objective(recipe: TrainRecipe) -> Objective:
    _load_builtin()
    return OBJECTIVES.get(recipe.objective)(recipe)


def _load_builtin() -> None:
    """Import the objective modules, which register themselves (kept lazy: they import torch)."""
    import prmkit.train.objectives.implicit  # noqa: F401
    import prmkit.train.objectives.likelihood  # noqa: F401
    import prmkit.train.objectives.prm  # noqa: F401
    import prmkit.train.objectives.sft  # noqa: F401


_load_builtin()

__all__ = ["OBJECTIVES", "Encoded", "EncodeStats", "Objective", "make_objective"]
