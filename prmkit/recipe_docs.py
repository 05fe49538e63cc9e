"""Every recipe key of every stage, with its type, default and docstring, read from the pydantic models themselves.

Why: the recipe models are the single source of truth for what a recipe may say; documentation written by hand
drifts from them. `prmkit recipe-docs` prints this; docs/recipes.md is its output, and a test fails when that file
is stale (regenerate it with `prmkit recipe-docs > docs/recipes.md`).
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

HEADER = (
    "# Recipe keys\n\n"
    "Generated from the recipe models by `prmkit recipe-docs` (do not edit by hand; `make test` fails when this\n"
    "file is stale). Each stage's recipe is a YAML mapping of these keys; dotted overrides on the command line use\n"
    "the same paths (`sampling.n=8`). Types are Python's; `a | None` may be `null`.\n"
)


def _type_name(annotation: Any) -> str:
    """A short readable type: int, str | None, list[str], SamplingSpec, 'hf' | 'vllm', ..."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is typing.Literal:
        return " | ".join(json.dumps(a) for a in args)
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join(_type_name(a) for a in args)}]" if args else name
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", str(annotation).replace("typing.", ""))


def _default(field: Any) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if value is PydanticUndefined:
        return "required"
    if isinstance(value, BaseModel):
        return "(section)"
    return json.dumps(value, default=str)


def _section_of(annotation: Any) -> type[BaseModel] | None:
    """The recipe section a field holds (a model, possibly optional), to document its keys under it."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _section_of(arg)
        if found is not None:
            return found
    return None


def keys(model: type[BaseModel], prefix: str = "") -> list[dict[str, str]]:
    """One row per key, sections expanded in place (`sampling.n`, `policy.vllm.max_model_len`, ...)."""
    rows = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        section = _section_of(field.annotation)
        doc = field.description or ((section.__doc__ or "").split("\n\n")[0] if section is not None else "")
        doc = " ".join(doc.split())
        rows.append({"key": path, "type": _type_name(field.annotation), "default": _default(field), "doc": doc})
        if section is not None:
            rows += keys(section, f"{path}.")
    return rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render() -> str:
    """The whole reference as markdown: one table per stage, in the registry's order."""
    from prmkit.commands import COMMANDS, load_builtin_commands

    load_builtin_commands()
    parts = [HEADER]
    for name in COMMANDS:
        command = COMMANDS.get(name)
        parts.append(f"\n## `prmkit {name}`\n\n{command.help}\n")
        parts.append("| key | type | default | what it does |\n|---|---|---|---|")
        for row in keys(command.recipe):
            cells = (f"`{row['key']}`", f"`{_cell(row['type'])}`", f"`{_cell(row['default'])}`", _cell(row["doc"]))
            parts.append("| " + " | ".join(cells) + " |")
    return "\n".join(parts) + "\n"
