"""Checks that run before any model is loaded or any token generated: a bad recipe costs seconds, not a run.

- the step style has a non-empty separator (an empty one would make every generated step empty);
- every problem has text and a unique id;
- the policy's tokenizer has a chat template when the recipe asks for one (tokenizer only, no weights);
- a prmkit-trained PRM is read with the format it was trained with: a recipe naming another format, or
  format options that disagree with the checkpoint's prmkit_prm.json, would score silently wrong.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prmkit.data.shards import select_shard
from prmkit.errors import DataError, ModelError, RecipeError
from prmkit.records import Record
from prmkit.search.recipe import SearchRecipe
from prmkit.search.tree import Boundary, boundary_for


def load_problems(recipe: SearchRecipe) -> list[Record]:
    d = recipe.data
    problems = d.load("problems")
    for k, p in enumerate(problems):
        if not p.problem.strip():
            raise DataError(f"{d.path}: record {k} ({p.id!r}) has an empty problem text")
    return select_shard(problems, recipe.shard)


def check_steps(recipe: SearchRecipe) -> Boundary:
    return boundary_for(recipe.steps.style, recipe.steps.tag)


def check_policy_template(recipe: SearchRecipe) -> Any:
    """The policy's tokenizer when the prompt needs it (chat template), else None; loads no weights."""
    if not recipe.prompt.chat_template:
        return None
    from prmkit.models.loading import load_tokenizer

    tokenizer = load_tokenizer(recipe.policy.model, trust_remote_code=recipe.policy.trust_remote_code)
    if not getattr(tokenizer, "chat_template", None):
        raise RecipeError(
            f"prompt.chat_template is on but the policy {recipe.policy.model!r} has no chat template "
            "in its tokenizer; turn prompt.chat_template off or use a chat model"
        )
    return tokenizer


def check_prm_format(recipe: SearchRecipe) -> None:
    """A prmkit checkpoint must be read with the format (and options) it was trained with."""
    spec = recipe.prm
    if spec.is_verifier:
        return
    path = Path(spec.model).expanduser()
    if not path.is_dir():
        if spec.format == "auto":
            raise ModelError(
                f"prm.model {spec.model!r}: format auto reads the checkpoint's prmkit_prm.json, so the "
                "PRM must be a local folder; otherwise name its format in prm.format"
            )
        return
    from prmkit.engines.hf_scorer import resolve_format
    from prmkit.formats import read_metadata

    meta = read_metadata(path)
    if meta is not None:
        if meta.get("objective") == "sft":
            raise ModelError(f"prm.model {spec.model!r} is a policy (objective sft), not a PRM: it has no step scores")
        trained = meta.get("format")
        if spec.format != "auto" and trained and spec.format != trained:
            raise ModelError(
                f"prm.format {spec.format!r} does not match the checkpoint {spec.model}: it was trained "
                f"with format {trained!r} (its prmkit_prm.json); set prm.format: auto or {trained}"
            )
        for key, value in spec.format_options.items():
            if key in meta and meta[key] != value:
                raise ModelError(
                    f"prm.format_options.{key}: {value!r} does not match the checkpoint {spec.model}, "
                    f"trained with {key} {meta[key]!r}; leave it out or set it to {meta[key]!r}"
                )
    resolve_format(str(path), spec.format, dict(spec.format_options) or None)


def preflight(recipe: SearchRecipe) -> tuple[list[Record], Boundary, Any]:
    """Problems, step boundary and (if needed) the policy tokenizer, after every check that needs no model."""
    boundary = check_steps(recipe)
    problems = load_problems(recipe)
    check_prm_format(recipe)
    tokenizer = check_policy_template(recipe)
    return problems, boundary, tokenizer
