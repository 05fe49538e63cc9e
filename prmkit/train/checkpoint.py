"""The final checkpoint: weights (LoRA merged in unless the recipe keeps the adapter), tokenizer and
prmkit_prm.json, the metadata that lets `score`/`bench`/`search` load it with no extra flags."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prmkit import __version__
from prmkit.formats.base import METADATA_FILE


def metadata(objective: Any, recipe: Any) -> dict[str, Any]:
    """The contract's prmkit_prm.json: objective-specific fields plus version and length limit."""
    return {"prmkit_version": __version__, **objective.metadata(), "max_length": recipe.max_length}


def write_metadata(path: str | Path, meta: dict[str, Any]) -> None:
    (Path(path) / METADATA_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def save_final(model: Any, tokenizer: Any, path: str | Path, meta: dict[str, Any], merge_lora: bool = True) -> Path:
    """Write the checkpoint `score` loads. A peft model is merged first (or saved as an adapter when asked)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if hasattr(model, "merge_and_unload") and merge_lora:
        model = model.merge_and_unload()
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    if getattr(model, "generation_config", None) is not None and tokenizer.eos_token_id is not None:
        model.generation_config.eos_token_id = tokenizer.eos_token_id
        model.generation_config.save_pretrained(path)
    write_metadata(path, meta)
    return path
