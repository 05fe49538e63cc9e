"""The annotate stage's recipe: the solutions, the rollout policy or judge, and the labelling method."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from prmkit.annotate.methods.judge import DEFAULT_JUDGE_TEMPLATE
from prmkit.launcher import LauncherSpec
from prmkit.recipe import Section, registered
from prmkit.sections import DataSpec, ModelSpec, PromptSpec, SamplingSpec, StepSpec


class RolloutSpec(SamplingSpec):
    k: int = Field(default=8, ge=1)
    """Rollouts per probed prefix."""
    early_stop: bool = True
    """Hard labels need one success: roll out in waves (first_wave, then doubling up to k) and stop a prefix at its
    first success. Its label equals the all-k label exactly (sample j of a prefix is the same draw in any wave);
    soft labels (mc with label_type soft) always take all k."""
    first_wave: int = Field(default=1, ge=1)
    """Rollouts in the first wave of early stopping; each later wave doubles the rollouts done."""
    reuse_solutions: bool | Literal["auto"] = "auto"
    """A right solution of the same problem that passes through a probed prefix is a successful draw there, so
    the prefix's hard verdict (good) needs no rollout. Failing solutions are not counted: one failure reused at
    the nested prefixes a search probes would tie their verdicts together. auto: on when the solutions' folder
    holds the `prmkit sample` recipe that drew them with this policy model, prompt, steps and sampling
    (temperature, top_p, max_new_tokens, stop), so each is a draw of the rollout policy; true: always (another
    model's or people's right solutions still show the prefix can be completed); false: never. Soft labels take
    no witnesses. The plan and metrics.json say which, and why."""


class MethodSpec(Section):
    name: Annotated[str, registered("prmkit.annotate.methods:LABELLERS")] = "binary"
    """mc, binary, omega, judge or consensus."""
    label_type: Literal["hard", "soft"] = "hard"
    """For mc and omega: which labels go into `labels` (both are kept in meta)."""
    consensus_base: Literal["mc", "binary"] = "mc"
    """consensus: the rollout method (mc or binary) whose labels the judge must agree with."""
    bisect_draws: int | None = Field(default=2, ge=1)
    """binary: while bisecting, a probe with no success in this many draws is taken as bad; only the first bad
    prefix the search settles on gets all k (a success there overturns it and the search carries on to its
    right). Most of binary's rollouts confirmed bad prefixes the search only passes through; this spends
    `bisect_draws` on each of them instead of k. null: every probe takes all k."""


class JudgeSpec(Section):
    model: ModelSpec
    """The judge model and its engine."""
    template: str = DEFAULT_JUDGE_TEMPLATE
    """The judge's prompt ({problem}, {steps})."""
    k: int = Field(default=1, ge=1)
    """Verdicts sampled per solution (majority of them)."""
    temperature: float = 0.0
    """Verdict sampling temperature."""
    max_new_tokens: int = Field(default=256, ge=1)
    """Tokens per verdict at most."""


class OmegaSpec(Section):
    """OmegaPRM's tree search (method.name omega); defaults are the paper's. k is rollout.k (the paper: 8)."""

    c_puct: float = Field(default=0.125, ge=0.0)
    """Exploration weight of U(s) = c_puct * sqrt(sum N) / (1 + N(s))."""
    alpha: float = Field(default=0.5, gt=0.0, le=1.0)
    """Q(s, r) = alpha^(1 - MC(s)) * beta^(len(r) / L): prefers states whose MC is high but below 1."""
    beta: float = Field(default=0.9, gt=0.0, le=1.0)
    """Length discount of Q: prefers short rollouts."""
    length_penalty: float = Field(default=500.0, gt=0.0)
    """L, in the policy's tokens."""
    length_scale: float = Field(default=1.0, gt=0.0)
    """Multiplies L: e.g. 0.2 for the character-level world, whose solutions are ~100 tokens, not hundreds."""
    max_searches: int = Field(default=100, ge=1)
    """Binary searches per problem (the paper's search limit); max_rollouts_per_problem also bounds it."""


class PrefilterSpec(Section):
    enabled: bool = False
    """Drop problems whose solutions are all right or all wrong (nothing to learn about steps there)."""


class AnnotateRecipe(Section):
    seed: int = 0
    """Seed of every random choice of the run (sampling, initialisation, data order): same seed, same outputs."""
    output_dir: str
    """Folder of this run's outputs, recipe.yaml and manifest.json; a rerun of the same recipe resumes it."""
    solutions: DataSpec
    """The step-split solutions to label (e.g. prmkit sample's samples.jsonl), with reference answers."""
    policy: ModelSpec
    """The model whose rollouts from each step prefix estimate that prefix's chance to reach the answer."""
    prompt: PromptSpec = PromptSpec()
    rollout: RolloutSpec = RolloutSpec()
    """How rollouts are sampled from each probed prefix (k per prefix)."""
    steps: StepSpec = StepSpec()
    method: MethodSpec = MethodSpec()
    """The labelling method and its options."""
    judge: JudgeSpec | None = None
    """The LLM judge (methods judge and consensus): reads a solution and names its first wrong step."""
    omega: OmegaSpec = OmegaSpec()
    """OmegaPRM's options (method omega)."""
    prefilter: PrefilterSpec = PrefilterSpec()
    """Keep only problems whose samples are neither all right nor all wrong (where labels teach most)."""
    max_rollouts_per_problem: int | None = Field(default=None, ge=1)
    """Cap: a problem's solutions past this many rollouts (worst case for the method) are skipped; for omega,
    the problem's rollout budget (no search starts that could exceed it)."""
    task: Annotated[str, registered("prmkit.tasks:TASKS")] | None = None
    """An embedded world with an exact checker (e.g. arithmetic): omega's new paths get `meta.true_labels`."""
    shard: str | None = None
    """`i/n`: label problem k's solutions when k mod n == i (whole problems, which share prefixes);
    `merge_from` joins the shards."""
    chunk_size: int = Field(default=32, ge=1)
    """Solutions labelled together: whole problems, until the chunk holds this many solutions."""
    merge_from: list[str] | None = None
    """Output folders of finished shard runs of this recipe: join their records into output_dir; no rollouts."""
    launcher: LauncherSpec = LauncherSpec()


RESUME_SAFE = frozenset(
    {
        "policy.device",
        "policy.max_batch_size",
        "policy.dtype",
        "policy.prefix_cache_mb",
        "judge.model.device",
        "judge.model.max_batch_size",
        "chunk_size",
    }
)
