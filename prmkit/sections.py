"""Recipe sections shared by several stages (data, models, prompts, sampling, steps).

Each stage's recipe composes these, so a key means the same thing in every recipe.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from prmkit.recipe import Section, registered


class DataSpec(Section):
    """Where records come from: a local JSON/JSONL/Parquet file or folder, or a Hub data set id."""

    path: str
    """A local file (.jsonl, .json, .parquet) or folder, or a Hub data set id."""
    layout: str = "auto"
    """auto, prmkit, gsm8k, math, processbench, prmbench, prm800k, math_shepherd, trl, bigbench_mistake."""
    split: str | None = None
    """The split to read (a Hub split, or the stem of a file in a local folder)."""
    subset: str | None = None
    """The Hub data set's configuration (e.g. gsm8k's 'main')."""
    limit: int | None = Field(default=None, ge=1)
    """Read at most this many records (null: all)."""
    options: dict[str, Any] = {}
    """Layout options, e.g. prm800k's neutral_is_good."""

    def iter_records(self, split: str | None = None) -> Any:
        """The records, read lazily (`split` overrides the spec's own, for multi-split benchmarks)."""
        from prmkit.data.layouts import load_records

        return load_records(
            self.path,
            layout=self.layout,
            split=split or self.split,
            subset=self.subset,
            limit=self.limit,
            **self.options,
        )

    def load(self, what: str = "records", unique_ids: bool = True, split: str | None = None) -> list[Any]:
        """Every record; an empty source and (with `unique_ids`) an id seen twice are DataErrors naming the path.
        `what` names the records in the messages (problems, solutions)."""
        from prmkit.errors import DataError

        records = list(self.iter_records(split))
        if not records:
            raise DataError(f"{self.path}: no {what} (the source is empty)")
        if unique_ids:
            seen: set[str] = set()
            for r in records:
                if r.id in seen:
                    raise DataError(f"{self.path}: record id {r.id!r} appears twice; ids must be unique")
                seen.add(r.id)
        return records


class VLLMOptions(Section):
    """Options only the vllm engine reads (ignored by hf)."""

    tensor_parallel_size: int = Field(default=1, ge=1)
    """GPUs one model is split over (CPU: 1)."""
    gpu_memory_utilization: float = Field(default=0.9, gt=0.0, le=1.0)
    """Share of GPU memory this engine may take: e.g. 0.6 for a policy and 0.3 for a PRM on one GPU."""
    max_model_len: int | None = Field(default=None, ge=1)
    """Context length vLLM reserves KV cache for (null: the model's own)."""
    enforce_eager: bool | None = None
    """None: eager on CPU, CUDA graphs on GPU."""
    enable_prefix_caching: bool = True
    """Reuse the KV cache of shared prompt prefixes (MC rollouts, n samples)."""
    engine_kwargs: dict[str, Any] = {}
    """Passed through to vLLM's engine arguments. Data parallelism: one process per GPU with `shard=i/n`."""


class ModelSpec(Section):
    """A model by local path or Hub id, and the engine that runs it."""

    model: str
    """A local folder, a Hub id, or a .gguf file (converted once into a cached folder)."""
    engine: Annotated[str, registered("prmkit.engines:SAMPLERS")] = "hf"
    """hf (transformers; any machine) or vllm (vLLM's offline engine)."""
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """Weights' dtype; auto: float32 on CPU, the checkpoint's own dtype on a GPU."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """auto: CUDA when available, else CPU."""
    trust_remote_code: bool = False
    """Off unless the recipe turns it on: remote code is code."""
    max_batch_size: int = Field(default=64, ge=1)
    """Sequences per forward pass (vLLM: max_num_seqs)."""
    threads: int | None = Field(default=None, ge=1)
    """torch CPU threads (null: one fewer than the cores, at least 1; see prmkit.engines.threads)."""
    prefix_cache_mb: int | None = Field(default=None, ge=0)
    """engine hf: MB of KV cache kept for prompts prefilled before, so a prompt that extends one runs only its new
    tokens (the same samples up to float rounding). null: 256 in `search` (each round's prompts extend the last
    round's), off elsewhere; 0: off. An entry is a prompt's KV, layers x 2 x KV heads x head size x dtype bytes per
    token (SmolLM2-135M in float32: 46 KB): raise it for larger models. The vllm engine has its own
    (vllm.enable_prefix_caching)."""
    vllm: VLLMOptions = VLLMOptions()
    """Options only the vllm engine reads."""

    def build_sampler(self, seed: int, prefix_cache_mb: int = 0) -> Any:
        """The sampler this spec names, with the options its engine reads (`prefix_cache_mb`: the stage's default
        when the recipe leaves it null)."""
        from prmkit.engines import make_sampler
        from prmkit.engines.threads import set_cpu_threads

        set_cpu_threads(self.threads)
        kwargs = self.model_dump(exclude={"engine", "vllm", "threads", "prefix_cache_mb"})
        if self.engine == "vllm":
            kwargs.update(self.vllm.model_dump())
        if self.engine == "hf":
            kwargs["prefix_cache_mb"] = self.prefix_cache_mb if self.prefix_cache_mb is not None else prefix_cache_mb
        return make_sampler(self.engine, seed=seed, **kwargs)


class PromptSpec(Section):
    """How a problem becomes the policy's prompt."""

    template: str = "{problem}\n"
    """Python format string over the record's fields (problem)."""
    chat_template: bool = False
    """Wrap the rendered text as a user turn with the tokenizer's chat template."""
    system: str | None = None
    """A system prompt for the chat template (null: none)."""

    def render(self, record: Any, tokenizer: Any | None = None) -> str:
        """The prompt of `record` (its problem and meta fields in the template; the chat template when on)."""
        from prmkit.errors import RecipeError

        try:
            text = self.template.format(problem=record.problem, **record.meta)
        except (KeyError, IndexError, ValueError) as exc:
            raise RecipeError(f"prompt.template: cannot format it with a record's fields ({exc})") from None
        if not self.chat_template:
            return text
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            raise RecipeError("prompt.chat_template is on but the policy's tokenizer has no chat template")
        messages = ([{"role": "system", "content": self.system}] if self.system else []) + [
            {"role": "user", "content": text}
        ]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def label(self) -> str:
        """How a plan shows the prompt: the template, and the chat template with its system prompt when on."""
        text = f"template {self.template!r}"
        if self.chat_template:
            text += ", chat template" + (f', system prompt "{self.system}"' if self.system else "")
        return text


class SamplingSpec(Section):
    n: int = Field(default=4, ge=1)
    """Samples per problem."""
    temperature: float = Field(default=0.7, ge=0.0)
    """Sampling temperature; 0 is greedy."""
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    """Nucleus sampling: keep the smallest set of tokens with this much probability."""
    max_new_tokens: int = Field(default=256, ge=1)
    """Tokens generated per sample at most (a longer one is cut, finish_reason length)."""
    stop: list[str] = []
    """Strings that end a sample where they appear (not included in its text)."""


class StepSpec(Section):
    """How solution text is cut into steps (see prmkit.steps)."""

    style: str = "paragraphs"
    """paragraphs (split on blank lines), lines (one step per line) or tag (a marker after each step)."""
    tag: str | None = None
    """The marker of style tag (e.g. ' ки' or '<extra_0>')."""
