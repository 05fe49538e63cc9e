"""Training on this process: the data and its held-out split, the Trainer and its resume (data parallel under
`accelerate launch`). `prmkit train` calls `fit`; benchmarks/train.py times it against TRL's trainer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prmkit.errors import DataError
from prmkit.records import Record
from prmkit.sections import DataSpec
from prmkit.train.recipe import TrainRecipe

if TYPE_CHECKING:
    from prmkit.train.objectives import Encoded, Objective
    from prmkit.train.trainer import EvalCallback, PrmkitTrainer, TrainClock


def read_data(spec: DataSpec) -> list[Record]:
    return spec.load(unique_ids=False)


def split_eval(recipe: TrainRecipe, records: list[Record]) -> tuple[list[Record], list[Record]]:
    """(training records, held-out records): the eval data when named, else the last `holdout` records."""
    e = recipe.eval
    if e.data is not None:
        return records, read_data(e.data)[: max(e.max_records, e.problems)]
    if e.holdout:
        if e.holdout >= len(records):
            raise DataError(
                f"{recipe.data.path}: eval.holdout {e.holdout} leaves no training records (the data has {len(records)})"
            )
        return records[: -e.holdout], records[-e.holdout :]
    return records, []


RESUME_SAFE = frozenset(
    [
        f"training.{k}"
        for k in (
            "max_steps",
            "epochs",
            "max_time_s",
            "logging_steps",
            "save_steps",
            "save_total_limit",
            "eval_steps",
            "eval_batch_size",
            "report_to",
            "dataloader_num_workers",
            "threads",
        )
    ]
    + [f"eval.{k}" for k in ("max_records", "threshold", "task", "problems", "temperatures", "max_new_tokens")]
)
"""Keys a resumed run may change: how long to train, how to log and evaluate; never what is trained."""


class ListDataset:
    """A map-style dataset over encoded features (what the Trainer's length-grouped sampler reads)."""

    def __init__(self, features: list[dict[str, Any]]) -> None:
        self.features = features

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.features[i]


@dataclass
class Fitted:
    """What one process's training produced (every rank gets one; only rank 0 saves)."""

    trainer: PrmkitTrainer
    objective: Objective
    tokenizer: Any
    encoded: Encoded
    eval_records: list[Record]
    eval_callback: EvalCallback
    clock: TrainClock
    resumed_from: str | None
    result: Any
    tokens_run: int
    is_main: bool
    manifest: Any = None


def torch_cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def fit(recipe: TrainRecipe, recipe_path: str | None = None) -> Fitted:
    """Train on this process (data parallel under `accelerate launch`): model, data, Trainer, resume."""
    from transformers import PrinterCallback, set_seed

    from prmkit.manifest import RunManifest
    from prmkit.train.collate import PadCollator
    from prmkit.train.init_model import apply_lora, disable_dropout, load_for_training, prepare_init
    from prmkit.train.objectives import make_objective
    from prmkit.train.trainer import (
        EvalCallback,
        PrmkitTrainer,
        ProgressCallback,
        TrainClock,
        all_reduce_sum,
        last_complete_checkpoint,
        read_train_state,
        training_arguments,
    )

    out_dir = Path(recipe.output_dir)
    if not torch_cuda_available():
        from prmkit.engines.threads import set_cpu_threads

        set_cpu_threads(recipe.training.threads)
    args = training_arguments(recipe)  # sets up the process group under `accelerate launch`
    main = args.process_index == 0
    manifest = RunManifest(out_dir, "train", recipe, recipe_path, RESUME_SAFE) if main else None
    objective = make_objective(recipe)
    train_records, eval_records = split_eval(recipe, read_data(recipe.data))
    with args.main_process_first(desc="making the init model"):
        init_path = prepare_init(recipe, train_records)
    set_seed(recipe.seed)
    model, tokenizer = load_for_training(init_path, objective.model_kind, recipe.init.trust_remote_code)
    if recipe.training.disable_dropout:
        disable_dropout(model)
    objective.setup(model, tokenizer, init_path)
    encoded = objective.encode(train_records, tokenizer, recipe.data.path)
    if not encoded.features:
        raise DataError(f"{recipe.data.path}: no record fits max_length {recipe.max_length}")
    if recipe.training.gradient_checkpointing:
        model.config.use_cache = False
        if recipe.lora is not None:
            model.enable_input_require_grads()
    if recipe.lora is not None:
        model = apply_lora(model, recipe.lora, objective.model_kind)

    last = last_complete_checkpoint(out_dir)
    before_s, tokens_before = read_train_state(last)
    clock = TrainClock(recipe.training.max_time_s, before_s, tokens_before)
    eval_cb = EvalCallback(
        objective,
        tokenizer,
        eval_records[: recipe.eval.max_records],
        recipe.training.eval_steps,
        args.per_device_eval_batch_size,
    )
    trainer = PrmkitTrainer(
        model=model,
        args=args,
        train_dataset=ListDataset(encoded.features),
        data_collator=PadCollator(tokenizer.pad_token_id),
        processing_class=tokenizer,
        callbacks=[clock, ProgressCallback(), eval_cb],
        objective=objective,
        clock=clock,
    )
    trainer.remove_callback(PrinterCallback)
    if last is not None and main:
        from prmkit.console import console

        console.print(f"resuming from {last}", highlight=False)
    result = trainer.train(resume_from_checkpoint=last)
    tokens_run = all_reduce_sum(trainer.tokens_seen)
    return Fitted(
        trainer, objective, tokenizer, encoded, eval_records, eval_cb, clock, last, result, tokens_run, main, manifest
    )
