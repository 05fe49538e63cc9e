"""The `prmkit search` recipe: problems, a policy, a PRM, the methods to compare and the budgets (N) to sweep.

Methods are a mapping from a label to its options, so a run can compare several settings of one method
(`bon_min: {name: best_of_n, aggregate: min}`) and a dotted override reaches any of them
(`methods.beam.beam_width=2`). A method whose `name` is left out is the method named by its label.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from prmkit.launcher import LauncherSpec
from prmkit.recipe import Section, registered
from prmkit.score.recipe import PRMSpec
from prmkit.sections import DataSpec, ModelSpec, PromptSpec, StepSpec


class MethodSpec(Section):
    """One search method and its options; each method reads only the options its docstring names."""

    name: Annotated[str | None, registered("prmkit.search.methods:METHODS")] = None
    """best_of_n, weighted_majority, majority, beam, dvts or early_reject (default: the label)."""
    aggregate: Annotated[str, registered("prmkit.engines.scoring:AGGREGATES")] = "last"
    """Step scores -> one solution score, for ranking candidates and choosing the answer (min, last, prod, mean)."""
    select: Literal["best", "weighted_majority"] = "best"
    """Tree methods: the final answer is the best-scored finished candidate's, or the PRM-weighted vote."""
    beam_width: int = Field(default=4, ge=1)
    """beam, dvts, early_reject: M, expansions per kept candidate (N/M candidates kept; N/M subtrees in dvts)."""
    base: Literal["beam", "best_of_n"] = "beam"
    """early_reject: the search it prunes (step-level beam search, or N samples grown step by step)."""
    partial_tokens: int = Field(default=4, ge=1)
    """early_reject: tokens of a step generated before it is scored and possibly rejected."""
    keep_fraction: float = Field(default=0.5, ge=0.0, le=1.0)
    """early_reject: share of a problem's candidates (best partial scores first) that go on to finish the step
    (0: only `min_keep` and those within `margin`)."""
    margin: float | None = Field(default=None, ge=0.0)
    """early_reject: also keep every candidate whose partial score is within this of the best one."""
    min_keep: int | None = Field(default=None, ge=1)
    """early_reject: never keep fewer per problem (default 2N/M on beam, so the step's top-N/M selection still
    has a choice; 1 on best_of_n)."""

    def width(self, budget: int) -> int:
        """The beam width used at budget N: M, or N itself when N < M (so small budgets stay valid)."""
        return min(self.beam_width, budget)


class SearchSampling(Section):
    """How the policy samples. Steps are generated up to the step separator of `steps.style`."""

    temperature: float = Field(default=0.7, ge=0.0)
    """Policy sampling temperature."""
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    """Policy nucleus sampling."""
    max_new_tokens: int = Field(default=256, ge=1)
    """Whole solutions (best_of_n, weighted_majority, majority)."""
    step_max_tokens: int = Field(default=64, ge=1)
    """One step (tree methods); a step that runs past it ends its candidate (finish "length")."""
    max_steps: int = Field(default=12, ge=1)
    """Steps per candidate in tree methods; a candidate still open after them ends (finish "max_steps")."""


class SearchRecipe(Section):
    seed: int = 0
    """Seed of every random choice of the run (sampling, initialisation, data order): same seed, same outputs."""
    output_dir: str
    """Folder of this run's outputs, recipe.yaml and manifest.json; a rerun of the same recipe resumes it."""
    data: DataSpec
    """The problems to answer."""
    policy: ModelSpec
    """The model that proposes solutions and steps."""
    prm: PRMSpec
    """The PRM that scores them."""
    prompt: PromptSpec = PromptSpec()
    steps: StepSpec = StepSpec()
    sampling: SearchSampling = SearchSampling()
    methods: dict[str, MethodSpec]
    """Search methods by label: each label's options (a label that names a method needs no `name`)."""
    budgets: list[int] = [4]
    """The N swept: candidates per problem (samples for best_of_n, beam size for beam/dvts)."""
    shard: str | None = None
    """`i/n`: this run handles problems k with k mod n == i; `prmkit search` with `merge_from` joins shards."""
    chunk_size: int = Field(default=16, ge=1)
    """Problems searched together (one sampler call per round) and the unit of resumption."""
    merge_from: list[str] | None = None
    """Output folders of shard runs: join their results into output_dir and report; nothing is sampled."""
    launcher: LauncherSpec = LauncherSpec()

    @field_validator("budgets")
    @classmethod
    def _budgets(cls, value: list[int]) -> list[int]:
        if not value or any(b < 1 for b in value):
            raise ValueError("budgets must be a non-empty list of integers >= 1")
        return sorted(set(value))

    @model_validator(mode="after")
    def _methods(self) -> SearchRecipe:
        if not self.methods:
            raise ValueError("methods: name at least one search method")
        for label, spec in self.methods.items():
            if not label or "/" in label:
                raise ValueError(f"methods: label {label!r} must be non-empty and hold no '/'")
            if spec.name is None:
                from prmkit.search.methods import METHODS

                if label not in METHODS:
                    raise ValueError(f"methods.{label}: give a name (allowed: {', '.join(METHODS.names())})")
                spec.name = label
            if spec.name == "early_reject" and spec.partial_tokens >= self.sampling.step_max_tokens:
                raise ValueError(
                    f"methods.{label}.partial_tokens ({spec.partial_tokens}) must be below "
                    f"sampling.step_max_tokens ({self.sampling.step_max_tokens})"
                )
            if uses_beam_width(spec):
                for n in self.budgets:
                    if n % spec.width(n):
                        raise ValueError(
                            f"methods.{label}: budget {n} is not a multiple of beam_width "
                            f"{spec.beam_width}; use budgets that are multiples of it"
                        )
        return self


def uses_beam_width(spec: MethodSpec) -> bool:
    """Asked of the registered method (beam and dvts; early_reject on a beam)."""
    from prmkit.search.methods import METHODS

    assert spec.name is not None, "SearchRecipe's validator names every method"
    return METHODS.get(spec.name).uses_beam_width(spec)


def survivors(spec: MethodSpec, count: int, floor: int) -> int:
    """How many of `count` candidates early rejection lets finish their step."""
    return min(count, max(floor, math.ceil(spec.keep_fraction * count)))
