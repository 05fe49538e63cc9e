"""The `prmkit train` recipe: what to train (objective, init), on what (data, eval data) and how (training).

Every knob of the Trainer that a user may need has a key here; `training.extra_args` passes anything
else to `transformers.TrainingArguments` unchanged, so the recipe stays the single source of truth.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from prmkit.recipe import Section, registered
from prmkit.sections import DataSpec, PromptSpec, StepSpec


class TinyInit(Section):
    """A random-init tiny causal LM made on the spot (prmkit.models.tiny), its tokenizer fitted to training texts."""

    arch: str = "qwen2"
    """qwen2 or llama."""
    hidden_size: int = Field(default=128, ge=8)
    """Hidden width."""
    num_layers: int = Field(default=3, ge=1)
    """Decoder layers."""
    num_heads: int = Field(default=4, ge=1)
    """Attention heads."""
    num_kv_heads: int | None = None
    """Key/value heads (null: num_heads)."""
    intermediate_size: int = Field(default=512, ge=8)
    """MLP width."""
    max_position_embeddings: int = Field(default=1024, ge=16)
    """Longest sequence the model takes."""
    tokenizer: str = "char"
    """char (one token per byte), bpe (merges learned from the training texts) or words (bytes plus the
    commonest whole words and numbers of the training texts as single tokens)."""
    vocab_size: int = Field(default=512, ge=260)
    """Tokenizer size for the bpe/words kinds (char: bytes plus specials)."""
    extra_tokens: list[str] = []
    """Tokens added whole (e.g. a step tag)."""
    chat_template: bool = False
    """Give the tokenizer a ChatML-like chat template."""
    seed: int = 0
    """Seed of the random initialisation."""


class InitSpec(Section):
    """The starting point: a checkpoint (local path or Hub id) or a tiny model made from scratch."""

    model: str | None = None
    """A local folder, Hub id or .gguf file."""
    tiny: TinyInit | None = None
    """Or a tiny model made from scratch (the embedded world)."""
    trust_remote_code: bool = False
    """Off unless the recipe turns it on: remote code is code."""

    @model_validator(mode="after")
    def _one_source(self) -> InitSpec:
        if (self.model is None) == (self.tiny is None):
            raise ValueError(
                "init needs exactly one of 'model' (a path or Hub id) or 'tiny' (a model made from scratch)"
            )
        return self


class PrmSpec(Section):
    """How steps are rendered and scored (the checkpoint's format), and how labels are used."""

    head: Literal["token_classification", "lm"] = "token_classification"
    """token_classification (a 2-class head at each step separator) or lm (the LM's +/- logits there)."""
    step_separator: str = "\n"
    """Text after each step; the PRM reads its score at the separator's last token."""
    good_token: str = "+"
    """lm head: the token meaning a good step."""
    bad_token: str = "-"
    """lm head: the token meaning a bad step."""
    chat_template: bool = False
    """Render the problem and steps through the tokenizer's chat template."""
    last_step_only: bool = False
    """Train on the last step's label only: an outcome reward model."""
    label_type: Literal["auto", "hard", "soft"] = "auto"
    """auto: soft when any label is strictly between 0 and 1. Recorded in the checkpoint metadata."""


class ImplicitSpec(Section):
    """Implicit PRM (PRIME): reward = beta * log(pi / pi_ref), trained from outcome or step labels."""

    beta: float = Field(default=0.05, gt=0.0)
    """The implicit PRM's reward scale: r = beta * log(pi / pi_ref)."""
    reference_model: str | None = None
    """The frozen reference; default: the init model."""
    target: Literal["outcome", "steps"] = "outcome"
    """outcome: BCE of the whole solution's reward against its outcome (PRIME). steps: BCE of every step's
    cumulative reward against that step's label (annotate's automatic labels), so a correct step inside a
    wrong solution is not pushed down with the rest of it."""


class LoraSpec(Section):
    r: int = Field(default=8, ge=1)
    """LoRA rank."""
    alpha: int = Field(default=16, ge=1)
    """LoRA scale numerator (scale = alpha / r)."""
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    """LoRA dropout."""
    target_modules: list[str] | str = "all-linear"
    """Modules LoRA adapts (all-linear, or a list of names)."""
    merge: bool = True
    """Merge the adapter into the weights before the final save, so `score` loads a plain checkpoint."""


class TrainingSpec(Section):
    learning_rate: float = Field(default=5e-5, gt=0.0)
    """Peak learning rate (transformers' TrainingArguments, as every key here unless noted)."""
    epochs: float = Field(default=1.0, gt=0.0)
    """Passes over the data (fractions allowed); max_steps > 0 overrides it."""
    max_steps: int = -1
    """> 0 overrides epochs."""
    max_time_s: float | None = Field(default=None, gt=0.0)
    """Stop after this much training wall time (checkpoint saved); the lr schedule decays over it too."""
    batch_size: int = Field(default=8, ge=1)
    """Sequences per device per step."""
    eval_batch_size: int | None = Field(default=None, ge=1)
    """Sequences per device per eval step (null: batch_size)."""
    grad_accum: int = Field(default=1, ge=1)
    """Steps accumulated per optimizer step."""
    warmup_ratio: float = Field(default=0.0, ge=0.0, lt=1.0)
    """Share of the steps that warm the learning rate up."""
    weight_decay: float = Field(default=0.0, ge=0.0)
    """AdamW weight decay."""
    lr_scheduler: str = "linear"
    """linear, cosine, constant, ... (transformers' schedulers)."""
    max_grad_norm: float = 1.0
    """Gradient clipping."""
    logging_steps: int = Field(default=10, ge=1)
    """Log the loss every this many steps."""
    save_steps: int = Field(default=200, ge=1)
    """Save a resumable checkpoint every this many steps."""
    save_total_limit: int = Field(default=2, ge=1)
    """Checkpoints kept (older ones are deleted)."""
    eval_steps: int | None = Field(default=None, ge=1)
    """Evaluate on the eval data every this many steps (always once at the end)."""
    bf16: Literal["auto"] | bool = "auto"
    """auto: on only where the hardware has fast bf16 (a CUDA GPU that supports it)."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass: less memory, about a third more compute."""
    disable_dropout: bool = True
    """Turn every dropout off (as TRL's PRM trainer does): a PRM's step scores should not be noisy targets."""
    group_by_length: bool = True
    """Batch sequences of similar length (less padding)."""
    report_to: list[str] | str = "none"
    """none, tensorboard, wandb, ... (transformers' integrations)."""
    dataloader_num_workers: int = Field(default=0, ge=0)
    """Data loading worker processes."""
    threads: int | None = Field(default=None, ge=1)
    """torch intra-op CPU threads (null: one fewer than the cores, at least 1, as the engines; see
    prmkit.engines.threads). A tiny model on a busy 2-core machine trains several times faster on 1 thread:
    2 threads spin-wait for each other whenever one is descheduled."""
    extra_args: dict[str, Any] = {}
    """Passed to transformers.TrainingArguments as is."""


class EvalSpec(Section):
    """Held-out evaluation: PRM step metrics during training; final-answer accuracy of a policy at the end."""

    data: DataSpec | None = None
    """Held-out records (null: the last `holdout` training records)."""
    holdout: int = Field(default=0, ge=0)
    """Without eval data: hold this many training records out (taken from the end of the data)."""
    max_records: int = Field(default=400, ge=1)
    """Evaluate on at most this many records."""
    threshold: float = Field(default=0.5, gt=0.0, lt=1.0)
    """Step score above which a step counts as good in the eval metrics."""
    task: str | None = None
    """sft: a task with an exact checker (e.g. arithmetic): final-answer accuracy of the trained policy."""
    problems: int = Field(default=200, ge=1)
    """sft: problems the policy's accuracy is measured on."""
    temperatures: list[float] = [0.0, 0.7]
    """sft: sampling temperatures of that measurement."""
    max_new_tokens: int = Field(default=128, ge=1)
    """sft: tokens per answer in that measurement."""


class TrainRecipe(Section):
    seed: int = 0
    """Seed of every random choice of the run (sampling, initialisation, data order): same seed, same outputs."""
    output_dir: str
    """Folder of this run's outputs, recipe.yaml and manifest.json; a rerun of the same recipe resumes it."""
    objective: Annotated[str, registered("prmkit.train.objectives:OBJECTIVES")] = "prm"
    """prm, implicit or sft."""
    data: DataSpec
    """The training records (step labels for prm; problems with solutions for sft)."""
    init: InitSpec
    """The model training starts from."""
    max_length: int = Field(default=1024, ge=8)
    """Tokens per training sequence; longer ones are cut and the labels lost are counted."""
    prm: PrmSpec = PrmSpec()
    implicit: ImplicitSpec = ImplicitSpec()
    prompt: PromptSpec = PromptSpec()
    """sft: how a problem becomes the policy's prompt (as in `prmkit sample`)."""
    steps: StepSpec = StepSpec()
    """sft: how the steps are joined into the target text (as `prmkit sample` will split them)."""
    training: TrainingSpec = TrainingSpec()
    """The optimisation (transformers' Trainer under the hood)."""
    lora: LoraSpec | None = None
    """Train LoRA adapters instead of every weight (null: full fine-tune)."""
    eval: EvalSpec = EvalSpec()

    @field_validator("init", mode="before")
    @classmethod
    def _path_shorthand(cls, value: Any) -> Any:
        return {"model": value} if isinstance(value, str) else value
