"""How a solution's text is cut into steps and put back together.

Data sets and PRM formats disagree on the step boundary: PRM800K/ProcessBench-style text uses
blank lines, some generators put one step per line, and Math-Shepherd (" ки") or Qwen2.5-Math-PRM
("<extra_0>") put an explicit tag after each step. Each convention is a named style in
`STEP_STYLES`, so a recipe picks one by name and an unknown name is a RecipeError.

Contract: `split_steps(join_steps(steps))` gives back the stripped steps. `join_steps` refuses
(ValueError) a step that holds the separator or is empty, because either would silently change
the step count and misalign per-step labels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from prmkit.errors import RecipeError
from prmkit.registry import Registry


@dataclass(frozen=True)
class StepStyle:
    """One convention: `split(text, tag)` and `join(steps, tag)`; `needs_tag` says whether `tag` is used."""

    split: Callable[[str, str | None], list[str]]
    join: Callable[[list[str], str | None], str]
    needs_tag: bool = False


STEP_STYLES: Registry[StepStyle] = Registry("step style")


def _is_blank(line: str) -> bool:
    return not line.strip()


def _split_paragraphs(text: str, tag: str | None) -> list[str]:
    """Groups of non-blank lines; a line holding only whitespace counts as blank (CRLF-safe)."""
    steps: list[str] = []
    block: list[str] = []
    for line in text.split("\n"):
        if _is_blank(line):
            if block:
                steps.append("\n".join(block).strip())
                block = []
        else:
            block.append(line)
    if block:
        steps.append("\n".join(block).strip())
    return [s for s in steps if s]


def _join_paragraphs(steps: list[str], tag: str | None) -> str:
    clean = _checked(steps, lambda s: any(_is_blank(line) for line in s.split("\n")), "a blank line")
    return "\n\n".join(clean)


def _split_lines(text: str, tag: str | None) -> list[str]:
    return [s for s in (line.strip() for line in text.split("\n")) if s]


def _join_lines(steps: list[str], tag: str | None) -> str:
    return "\n".join(_checked(steps, lambda s: "\n" in s, "a newline"))


def _split_tagged(text: str, tag: str | None) -> list[str]:
    """Text before each tag is a step; non-empty text after the last tag is kept as a (untagged) step."""
    assert tag is not None
    return [s for s in (piece.strip() for piece in text.split(tag)) if s]


def _join_tagged(steps: list[str], tag: str | None) -> str:
    """Math-Shepherd's layout: every step followed by its tag, steps on separate lines."""
    assert tag is not None
    clean = _checked(steps, lambda s: tag in s, f"the tag {tag!r}")
    return "\n".join(step + tag for step in clean)


def _checked(steps: list[str], holds_separator: Callable[[str], bool], what: str) -> list[str]:
    """Stripped steps, or ValueError naming the first step that would not survive a split."""
    clean = []
    for i, step in enumerate(steps):
        s = step.strip()
        if not s:
            raise ValueError(f"step {i} is empty; it would vanish when the text is split again")
        if holds_separator(s):
            raise ValueError(f"step {i} contains {what}, the step separator; splitting would change the step count")
        clean.append(s)
    return clean


STEP_STYLES.register("paragraphs")(StepStyle(_split_paragraphs, _join_paragraphs))
STEP_STYLES.register("lines")(StepStyle(_split_lines, _join_lines))
STEP_STYLES.register("tag")(StepStyle(_split_tagged, _join_tagged, needs_tag=True))


def _style(style: str, tag: str | None) -> StepStyle:
    chosen = STEP_STYLES.get(style)
    if chosen.needs_tag and not tag:
        raise RecipeError(
            f"step style {style!r} needs a non-empty tag, e.g. ' ки' (Math-Shepherd) or '<extra_0>' (Qwen)"
        )
    if not chosen.needs_tag and tag is not None:
        raise RecipeError(f"step style {style!r} takes no tag (got {tag!r}); use style 'tag' for tagged steps")
    return chosen


def split_steps(text: str, style: str = "paragraphs", tag: str | None = None) -> list[str]:
    """Cut `text` into stripped, non-empty steps following the named style."""
    return _style(style, tag).split(text, tag)


def join_steps(steps: list[str], style: str = "paragraphs", tag: str | None = None) -> str:
    """Inverse of `split_steps`; ValueError if a step is empty or holds the separator."""
    return _style(style, tag).join(list(steps), tag)
