"""YAML recipes validated by pydantic models, with dotted `key=value` overrides typed through the same models.

A recipe is the single source of truth of a run. Errors name the file, the key path and what is allowed
(the closest valid key for a typo), so a user fixes a recipe without reading a traceback.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from prmkit.errors import RecipeError
from prmkit.registry import closest

R = TypeVar("R", bound="Section")


class Section(BaseModel):
    """Base of every recipe model: unknown keys are errors (a typo must never be silently ignored)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def registered(where: str) -> AfterValidator:
    """For `Annotated[str, registered("module:REGISTRY")]`: the value must name an entry of that registry.

    The registry is imported when a recipe is validated, not when the model is defined (no import cycles);
    an unknown name is the registry's own RecipeError, listing the allowed names. None passes.
    """
    import importlib

    module, attr = where.split(":")

    def check(value: Any) -> Any:
        if value is not None:
            getattr(importlib.import_module(module), attr).get(value)
        return value

    return AfterValidator(check)


def read_yaml(path: Path) -> dict[str, Any]:
    """Safe-load a recipe file; recipes cannot run code."""
    if not path.is_file():
        raise RecipeError(f"{path}: recipe file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise RecipeError(f"{path}{where}: invalid YAML ({problem})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe must be a mapping of keys to values, got {type(data).__name__}")
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    """`a.b.c=value` -> (["a", "b", "c"], value); the value is read as YAML so numbers, booleans and lists work."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise RecipeError(f"override {text!r}: expected key.sub=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set each dotted override into a copy of the recipe dict, creating sub-mappings as needed."""
    import copy

    out = copy.deepcopy(data)
    for text in overrides:
        path, value = parse_override(text)
        node = out
        for i, part in enumerate(path[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                where = ".".join(path[: i + 1])
                raise RecipeError(f"override {text!r}: {where} is a value, not a section")
            node = child
        node[path[-1]] = value
    return out


VARS_KEY = "vars"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def resolve_vars(data: dict[str, Any], source: str) -> dict[str, Any]:
    """Substitute a recipe's top-level `vars:` into its string values, then drop `vars`.

    Why: one recipe serves many runs (`make demo SEED=3` sets `vars.seed=3 vars.run=runs/quickstart-3`) without a
    copy per run. A value that is exactly `${name}` takes the variable's own type (a seed stays an integer);
    `${name}` inside a longer string is replaced by its text. An undefined name is a RecipeError naming the key.
    """
    variables = data.get(VARS_KEY)
    if variables is None:
        variables = {}
    if not isinstance(variables, dict) or any(not isinstance(v, (str, int, float, bool)) for v in variables.values()):
        raise RecipeError(f"{source}: '{VARS_KEY}' must map names to plain values (strings, numbers, booleans)")

    def sub(node: Any, where: str) -> Any:
        if isinstance(node, dict):
            return {k: sub(v, f"{where}.{k}" if where else str(k)) for k, v in node.items()}
        if isinstance(node, list):
            return [sub(v, f"{where}[{i}]") for i, v in enumerate(node)]
        if not isinstance(node, str) or "${" not in node:
            return node
        for name in _VAR.findall(node):
            if name not in variables:
                known = ", ".join(sorted(variables)) or "none defined"
                raise RecipeError(f"{source}: {where}: undefined variable '${{{name}}}' (vars: {known})")
        whole = _VAR.fullmatch(node)
        if whole:
            return variables[whole.group(1)]
        return _VAR.sub(lambda m: str(variables[m.group(1)]), node)

    return sub({k: v for k, v in data.items() if k != VARS_KEY}, "")


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the sub-model at `loc` (for 'did you mean' on an unknown key)."""
    current: Any = model
    for part in loc:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            return []
        current = _model_in(field.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _model_in(annotation: Any) -> Any:
    """The pydantic model inside an annotation such as `Model | None` (or the annotation itself)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _describe(err: dict[str, Any], model: type[BaseModel]) -> str:
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    key = ".".join(str(p) for p in loc) or "(top level)"
    kind = err["type"]
    if kind == "extra_forbidden":
        valid = _fields_at(model, loc[:-1])
        hint = closest(str(loc[-1]), valid)
        msg = f"unknown key '{key}'"
        if hint:
            msg += f" (did you mean '{'.'.join([*map(str, loc[:-1]), hint])}'?)"
        elif valid:
            msg += f"; valid keys here: {', '.join(valid)}"
        return msg
    if kind == "missing":
        return f"missing required key '{key}'"
    given = err.get("input")
    shown = repr(given) if not isinstance(given, dict) else "a mapping"
    return f"{key}: {err['msg'].rstrip('.')} (got {shown})"


def validate(model: type[R], data: dict[str, Any], source: str) -> R:
    """Validate a recipe dict; every problem becomes one line of a RecipeError that names `source`."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = [_describe(e, model) for e in exc.errors()]
        raise RecipeError(f"{source}: " + "; ".join(lines)) from None


def load_recipe(model: type[R], path: str | Path, overrides: list[str] | None = None) -> R:
    """Read, override and validate a recipe file."""
    path = Path(path)
    source = str(path) + (" (with overrides)" if overrides else "")
    data = resolve_vars(apply_overrides(read_yaml(path), list(overrides or [])), source)
    return validate(model, data, source)


def dump_recipe(recipe: BaseModel) -> str:
    """The resolved recipe as YAML (what actually ran, defaults included)."""
    return yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
