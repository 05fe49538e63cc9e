"""The score stage's recipe, and the `prm:` section (which PRM, how to read it, which engine) shared by `score`,
`bench` and `search`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from prmkit.launcher import LauncherSpec
from prmkit.recipe import Section, registered
from prmkit.sections import DataSpec, VLLMOptions

DEFAULT_VERIFY_TEMPLATE = (
    "Check this solution step by step.\n"
    "Problem: {problem}\n"
    "{steps}\n"
    'For each step write "Step k: correct" or "Step k: incorrect", and stop at the first incorrect step.\n'
    "Verification:\n"
)


class GenerativeSpec(Section):
    """An LLM asked to verify each step (ThinkPRM/GenPRM style): k critiques sampled, verdicts averaged."""

    sampler: str = "hf"
    """The sampling engine that runs the verifier (hf, vllm)."""
    k: int = Field(default=4, ge=1)
    """Critiques sampled per solution."""
    temperature: float = Field(default=0.7, ge=0.0)
    """Critique sampling temperature."""
    max_new_tokens: int = Field(default=256, ge=1)
    """Tokens per critique at most."""
    template: str = DEFAULT_VERIFY_TEMPLATE
    """Format string over {problem} and {steps} (the steps written as "Step k: ..." lines)."""
    chat_template: bool = False
    """Wrap the verifier's prompt in its chat template."""


class VLLMScorerOptions(VLLMOptions):
    """vllm-engine options of a PRM: the engine's own, plus the check against hf and the fallback."""

    verify_against_hf: int = Field(default=2, ge=0)
    """Solutions scored by both engines before vLLM runs; a disagreement stops the run."""
    verify_tolerance: float = Field(default=0.02, gt=0.0)
    """Largest step-score difference from hf accepted in the first-batch check."""
    fallback: Literal["none", "hf"] = "none"
    """hf: use the hf scorer (with a warning) when vLLM cannot serve this PRM."""


class PRMSpec(Section):
    """A PRM by local path or Hub id, its format and the engine that runs it."""

    model: str
    """A local folder, Hub id or .gguf file."""
    format: str = "auto"
    """auto (read the checkpoint's prmkit_prm.json), prmkit, qwen_prm, math_shepherd, rlhflow, skywork, implicit."""
    format_options: dict[str, Any] = {}
    """Options of the format (e.g. a step tag)."""
    engine: Annotated[str, registered("prmkit.engines.scoring:SCORERS")] = "hf"
    """hf (discriminative PRM, one forward pass per solution), vllm (the pooling runner) or generative
    (an LLM verifies the steps)."""
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """auto: float32 on CPU, the checkpoint's own dtype on a GPU."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """auto: CUDA when available, else CPU."""
    trust_remote_code: bool = False
    """Run the checkpoint's own modelling code (Qwen2.5-Math-PRM needs it)."""
    max_batch_size: int = Field(default=16, ge=1)
    """Solutions per forward pass at most (a pass over candidates that extend cached prefixes, whose rows are a few
    new tokens each, is bounded by max_batch_tokens alone)."""
    max_batch_tokens: int = Field(default=16384, ge=1)
    """Tokens per forward pass at most (padding included)."""
    max_length: int | None = Field(default=None, ge=8)
    """Tokens per solution; later steps are dropped whole and counted (default: the model's limit)."""
    prefix_cache_mb: int | None = Field(default=None, ge=0)
    """engine hf: MB of KV cache kept for token prefixes scored before, so a candidate that extends one runs only
    its new tokens (same scores within 1e-5). null: 256 in `search` (candidates grow a step per round), off
    elsewhere (unrelated solutions, and scores then never depend on what was scored before); 0: off."""
    bidirectional: bool = False
    """BiPRM: also score the steps in reverse order and average the two scores of each step."""
    threads: int | None = Field(default=None, ge=1)
    """torch CPU threads (null: one fewer than the cores, at least 1; see prmkit.engines.threads)."""
    generative: GenerativeSpec = GenerativeSpec()
    """engine generative: the LLM verifier's options."""
    vllm: VLLMScorerOptions = VLLMScorerOptions()
    """engine vllm: vLLM's options."""

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value != "auto":
            from prmkit.formats import FORMATS

            FORMATS.get(value)
        return value

    @property
    def is_verifier(self) -> bool:
        """An LLM verifier (engine generative): it writes critiques and is read with no PRM format."""
        from prmkit.engines.scoring import SCORERS

        return SCORERS.get(self.engine).generates

    def scorer_kwargs(self, seed: int = 0) -> dict[str, Any]:
        """What the engine's factory takes."""
        common = {
            "model": self.model,
            "dtype": self.dtype,
            "device": self.device,
            "trust_remote_code": self.trust_remote_code,
            "max_batch_size": self.max_batch_size,
        }
        if self.is_verifier:
            return {**common, **self.generative.model_dump(), "seed": seed}
        kwargs = {
            **common,
            "format": self.format,
            "format_options": dict(self.format_options),
            "max_batch_tokens": self.max_batch_tokens,
            "max_length": self.max_length,
        }
        if self.engine == "hf":
            kwargs["prefix_cache_mb"] = self.prefix_cache_mb or 0
        if self.engine == "vllm":
            kwargs.update(self.vllm.model_dump(exclude={"enable_prefix_caching"}), seed=seed)
        return kwargs

    def label(self) -> str:
        """How a plan names the PRM: model (engine, where it comes from) and the format it is read with."""
        from prmkit.data.plan import model_label

        fmt = "an LLM verifier" if self.is_verifier else f"format {self.format}"
        return f"{model_label(self.model, self.engine)}, {fmt}"

    def generation_bound(self, solutions: int | None) -> str:
        """Tokens the PRM generates: none for a discriminative one; k critiques x max_new_tokens per solution
        (twice with BiPRM) for an LLM verifier."""
        if not self.is_verifier:
            return "0 (a discriminative PRM scores, it generates nothing)"
        g = self.generative
        per = g.k * g.max_new_tokens * (2 if self.bidirectional else 1)
        if solutions is None:
            return f"{per:,} per solution (k {g.k} x max_new_tokens {g.max_new_tokens})"
        return f"{solutions * per:,}"


def build_scorer(spec: PRMSpec, seed: int = 0) -> Any:
    """The scorer a `prm:` section describes (wrapped for BiPRM when asked)."""
    from prmkit.engines.bidirectional import Bidirectional
    from prmkit.engines.scoring import make_scorer
    from prmkit.engines.threads import set_cpu_threads

    set_cpu_threads(spec.threads)
    scorer = make_scorer(spec.engine, **spec.scorer_kwargs(seed))
    return Bidirectional(scorer) if spec.bidirectional else scorer


class ScoreRecipe(Section):
    seed: int = 0
    """Seed of every random choice of the run (sampling, initialisation, data order): same seed, same outputs."""
    output_dir: str
    """Folder of this run's outputs, recipe.yaml and manifest.json; a rerun of the same recipe resumes it."""
    data: DataSpec
    """The step-split solutions to score."""
    prm: PRMSpec
    """The PRM, its format and engine."""
    shard: str | None = None
    """`i/n`: this run scores records k with k mod n == i."""
    merge_from: list[str] | None = None
    """Output folders of shard runs: join their scored records into output_dir (in data order); nothing is scored."""
    chunk_size: int = Field(default=64, ge=1)
    """Records per scorer call (and per resume unit)."""
    launcher: LauncherSpec = LauncherSpec()
    """Where the scoring runs: here, or as one Ray task per shard (then merged)."""


RESUME_SAFE = frozenset(
    {"prm.device", "prm.max_batch_size", "prm.max_batch_tokens", "prm.prefix_cache_mb", "chunk_size"}
)
