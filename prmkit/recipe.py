"""YAML recipes validated by pydantic models, with dotted `key=value` overrides typed through the same models.

A recipe is the single source of truth of a run. Errors name the file, the key path and what is allowed
(the closest valid key for a typo), so a user fixes a recipe without reading a traceback.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError, model_validator

from prmkit.errors import RecipeError
from prmkit.registry import closest

R = TypeVar("R", bound="Section")


def _number_kinds(annotation: Any) -> set[str]:
    """'int', 'float', 'bool' for the plain number types in an annotation (through Optional, unions, Annotated)."""
    kinds: set[str] = set()
    stack = [annotation]
    while stack:
        a = stack.pop()
        if a is bool:
            kinds.add("bool")
        elif a is int:
            kinds.add("int")
        elif a is float:
            kinds.add("float")
        else:
            stack.extend(getattr(a, "__args__", ()) or ())
            origin = getattr(a, "__origin__", None)
            if origin is not None and getattr(a, "__metadata__", None) is not None:
                stack.append(origin)
    return kinds


class Section(BaseModel):
    """Base of every recipe model: unknown keys are errors (a typo must never be silently ignored), and numbers
    are strict where a number is meant: a boolean is not an integer (`sampling.n=true` is not 1), a float is not an
    integer (`seed: 1e23`), and a float must be finite (`temperature: .inf`)."""

    # use_attribute_docstrings: the docstring under each key is its description at run time (prmkit recipe-docs)
    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_attribute_docstrings=True)

    @model_validator(mode="before")
    @classmethod
    def _strict_numbers(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for name, field in cls.model_fields.items():
            if name not in data:
                continue
            value, kinds = data[name], _number_kinds(field.annotation)
            if "int" in kinds and "bool" not in kinds and "float" not in kinds and isinstance(value, (bool, float)):
                raise ValueError(f"{name}: expected an integer, got {value!r}")
            if "float" in kinds and isinstance(value, bool) and "bool" not in kinds:
                raise ValueError(f"{name}: expected a number, got {value!r}")
            if "float" in kinds and isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{name}: expected a finite number, got {value!r}")
        return data


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


MAX_NODES = 20_000
"""A recipe is a few hundred YAML nodes; more than this, counting every alias where it expands, is refused (a
"billion laughs" anchor bomb would otherwise hang loading and write itself out expanded into recipe.yaml)."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a mapping with the same key twice (YAML would keep the last one silently)."""


def _mapping_without_duplicates(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (lines {seen[key]} and {line}); keep one", key_node.start_mark
            )
        seen[key] = line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def expanded_nodes(node: Any, memo: dict[int, int] | None = None) -> int:
    """How many nodes the document has once every alias is expanded, computed without expanding anything."""
    memo = {} if memo is None else memo
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = 1  # a cycle counts once (safe_load would refuse a recursive document anyway)
    total = 1
    if isinstance(node, yaml.MappingNode):
        total += sum(expanded_nodes(k, memo) + expanded_nodes(v, memo) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        total += sum(expanded_nodes(v, memo) for v in node.value)
    memo[key] = min(total, 10**12)
    return memo[key]


def read_yaml(path: Path) -> dict[str, Any]:
    """Safe-load a recipe file; recipes cannot run code. Refused with the file named: bytes that are not UTF-8
    (with their offset), invalid YAML and duplicate keys (with their lines), and documents over MAX_NODES."""
    if not path.is_file():
        raise RecipeError(f"{path}: recipe file not found")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecipeError(
            f"{path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); save the recipe as UTF-8"
        ) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None and expanded_nodes(node) > MAX_NODES:
            raise RecipeError(
                f"{path}: the recipe expands to more than {MAX_NODES:,} YAML nodes (anchors and aliases "
                "included); a recipe is far smaller, so this is refused"
            )
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
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
    if len(shown) > 200:  # a huge value is named, not printed whole
        shown = shown[:200] + f"... ({len(shown):,} characters)"
    return f"{key}: {err['msg'].rstrip('.')} (got {shown})"


def validate(model: type[R], data: dict[str, Any], source: str) -> R:
    """Validate a recipe dict; every problem becomes one line of a RecipeError that names `source`."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = [_describe(dict(e), model) for e in exc.errors()]
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
