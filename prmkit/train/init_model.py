"""The model a run starts from: a checkpoint (path or Hub id) or a tiny model made from scratch.

A tiny init is written once to `<output_dir>/init` (tokenizer trained on the training texts), so a
resumed run, the implicit PRM's reference model and the run's readers all find the same starting point.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prmkit.errors import ModelError
from prmkit.models.loading import LOAD_ERRORS, _load_failure, resolve_model
from prmkit.records import Record

MODEL_KINDS = ("causal_lm", "token_classification")


def prepare_init(recipe: Any, records: list[Record]) -> str:
    """The init checkpoint's location, making the tiny model first when the recipe asks for one."""
    if recipe.init.model is not None:
        return resolve_model(recipe.init.model)
    out = Path(recipe.output_dir) / "init"
    if (out / "config.json").is_file():
        return str(out)
    from prmkit.models.tiny import make_tiny_model

    t = recipe.init.tiny
    texts = [r.problem + "\n" + "\n".join(r.steps) for r in records]
    make_tiny_model(
        out,
        t.arch,
        texts=texts,
        tokenizer_kind=t.tokenizer,
        vocab_size=t.vocab_size,
        hidden_size=t.hidden_size,
        num_layers=t.num_layers,
        num_heads=t.num_heads,
        num_kv_heads=t.num_kv_heads,
        intermediate_size=t.intermediate_size,
        max_position_embeddings=t.max_position_embeddings,
        seed=t.seed,
        extra_tokens=t.extra_tokens,
        chat_template=t.chat_template,
    )
    return str(out)


def load_for_training(path: str, kind: str, trust_remote_code: bool = False) -> tuple[Any, Any]:
    """(model, tokenizer) in float32 (mixed precision is the Trainer's job) for the objective's model kind.

    A token-classification model from a causal LM checkpoint gets a newly initialised 2-class head.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForTokenClassification, AutoTokenizer

    if kind not in MODEL_KINDS:
        raise ValueError(f"model kind {kind!r}; allowed: {', '.join(MODEL_KINDS)}")
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        if kind == "token_classification":
            model = AutoModelForTokenClassification.from_pretrained(
                path, num_labels=2, dtype=torch.float32, trust_remote_code=trust_remote_code
            )
        else:
            model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, trust_remote_code=trust_remote_code)
    except LOAD_ERRORS as exc:
        raise ModelError(_load_failure(path, exc, "model")) from exc
    if tokenizer.pad_token_id is None:  # batches need a pad id; it is always masked out
        tokenizer.pad_token = tokenizer.eos_token
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def disable_dropout(model: Any) -> int:
    """Set p = 0 in every dropout module (classifier heads default to 0.1); returns how many were changed."""
    import torch

    changed = 0
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout) and module.p > 0:
            module.p = 0.0
            changed += 1
    return changed


def apply_lora(model: Any, spec: Any, kind: str) -> Any:
    """Wrap the model with a peft LoRA adapter; a token classifier's new head trains in full."""
    import torch
    from peft import LoraConfig, TaskType, get_peft_model

    task = TaskType.TOKEN_CLS if kind == "token_classification" else TaskType.CAUSAL_LM
    # peft keeps a token classifier's head in full (modules_to_save); "all-linear" would also put an adapter
    # on it, and peft refuses a saved module that is a LoRA layer (TypeError), so the head is left out here.
    heads = [name for name in ("score", "classifier") if isinstance(getattr(model, name, None), torch.nn.Module)]
    exclude = heads if task == TaskType.TOKEN_CLS and spec.target_modules == "all-linear" else None
    config = LoraConfig(
        r=spec.r,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=spec.target_modules,
        exclude_modules=exclude,
        task_type=task,
    )
    return get_peft_model(model, config)
