"""Pull the final answer out of a solution's text.

Strategies are named in `EXTRACTORS` and tried in `DEFAULT_ORDER`: the last `\\boxed{}` (MATH,
PRM800K, most instruction-tuned models), GSM8K's `#### X`, then "The answer is X"
(Math-Shepherd, few-shot prompts). Everything is plain string scanning in linear time: a regex
cannot match nested braces, and model text is untrusted, so no pattern may backtrack.
"""

from __future__ import annotations

import re
from typing import Callable, Iterator, Sequence

from prmkit.registry import Registry

Extractor = Callable[[str], "str | None"]
EXTRACTORS: Registry[Extractor] = Registry("answer extractor")
DEFAULT_ORDER: tuple[str, ...] = ("boxed", "gsm8k", "answer_is")

_BOX_COMMANDS = ("\\boxed", "\\fbox")


_SPECIAL = re.compile(r"[{}\\]")  # a single character class: linear, cannot backtrack


def _braces(text: str, start: int) -> Iterator[tuple[int, str]]:
    """Structural '{' and '}' at or after `start`; an escaped `\\{`, `\\}` (or `\\\\`) is skipped."""
    skip_to = start
    for m in _SPECIAL.finditer(text, start):
        j = m.start()
        if j < skip_to:
            continue
        c = text[j]
        if c == "\\":
            skip_to = j + 2
        else:
            yield j, c


def _brace_partners(text: str, start: int) -> dict[int, int]:
    """Map every '{' at or after `start` to its matching '}' in one pass."""
    partners: dict[int, int] = {}
    stack: list[int] = []
    for j, c in _braces(text, start):
        if c == "{":
            stack.append(j)
        elif stack:
            partners[stack.pop()] = j
    return partners


def _box_starts(text: str) -> list[tuple[int, int]]:
    """(command start, index after the command name) for each \\boxed / \\fbox, left to right."""
    found = []
    for cmd in _BOX_COMMANDS:
        i = text.find(cmd)
        while i >= 0:
            end = i + len(cmd)
            if end >= len(text) or not text[end].isalpha():  # \boxedfoo is another command
                found.append((i, end))
            i = text.find(cmd, end)
    return sorted(found)


def _space_token(text: str, i: int) -> str | None:
    """`\\boxed 5`: the whitespace-separated token after the command, without a trailing '$' or '.'."""
    n = len(text)
    while i < n and text[i] in " \t":
        i += 1
    j = i
    while j < n and not text[j].isspace() and text[j] != "$":
        j += 1
    token = text[i:j].rstrip(".")
    return token or None


def _single_pass_close(text: str, open_at: int) -> int:
    """Matching '}' for the '{' at `open_at` by a depth count, or -1 when unbalanced."""
    depth = 0
    for j, c in _braces(text, open_at):
        depth += 1 if c == "{" else -1
        if depth == 0:
            return j
    return -1


@EXTRACTORS.register("boxed")
def extract_boxed(text: str) -> str | None:
    """Content of the last balanced \\boxed{...} / \\fbox{...} (nested braces kept), or `\\boxed X`.

    The last box is usually closed, so it is scanned alone; only when it is unbalanced (a
    truncated generation) is one brace-matching pass over the rest run, keeping the total linear.
    """
    starts = _box_starts(text)
    if not starts:
        return None
    partners: dict[int, int] | None = None
    for k in range(len(starts) - 1, -1, -1):
        _, after = starts[k]
        if after < len(text) and text[after] == "{":
            if partners is None and k == len(starts) - 1:
                close = _single_pass_close(text, after)
            else:
                if partners is None:
                    partners = _brace_partners(text, starts[0][1])
                close = partners.get(after, -1)
            if close >= 0:
                content = text[after + 1 : close].strip()
                if content:
                    return content
        elif after < len(text) and text[after] in " \t":
            token = _space_token(text, after)
            if token:
                return token
    return None


def _rest_of_line(text: str, i: int) -> str:
    end = text.find("\n", i)
    return text[i:] if end < 0 else text[i:end]


@EXTRACTORS.register("gsm8k")
def extract_gsm8k(text: str) -> str | None:
    """The text after the last '####' on its line, thousands commas removed ('1,000' -> '1000')."""
    i = text.rfind("####")
    if i < 0:
        return None
    answer = _rest_of_line(text, i + 4).strip().replace(",", "").rstrip(".").strip()
    return answer or None


_ANSWER_IS = "answer is"


@EXTRACTORS.register("answer_is")
def extract_answer_is(text: str) -> str | None:
    """After the last 'answer is' / 'answer is:' (any case): up to the end of the sentence or line."""
    i = text.lower().rfind(_ANSWER_IS)
    if i < 0:
        return None
    rest = _rest_of_line(text, i + len(_ANSWER_IS)).strip()
    if rest.startswith(":"):
        rest = rest[1:].strip()
    for marker in (". ", ".\t"):  # a sentence end; a decimal point is not followed by a space
        cut = rest.find(marker)
        if cut >= 0:
            rest = rest[:cut]
    rest = rest.strip().rstrip(".").strip()
    if len(rest) >= 2 and rest.startswith("$") and rest.endswith("$"):
        rest = rest.strip("$").strip().rstrip(".").strip()
    boxed = extract_boxed(rest)
    answer = boxed if boxed is not None else rest.strip("*").strip()
    return answer or None


@EXTRACTORS.register("last_number")
def extract_last_number(text: str) -> str | None:
    """The last number in the text ('1,234.5' -> '1234.5'). Not in DEFAULT_ORDER: it guesses.

    A fallback for free-form GSM8K-style outputs that end with "... so she has $8 left.";
    opt in with `order=(*DEFAULT_ORDER, "last_number")`.
    """
    end = len(text)
    while end > 0 and not text[end - 1].isdigit():
        end -= 1
    if end == 0:
        return None
    start = end
    while start > 0 and (text[start - 1].isdigit() or text[start - 1] in ",."):
        start -= 1
    number = text[start:end].lstrip(",.").replace(",", "")
    if start > 0 and text[start - 1] == "-":
        number = "-" + number
    return number or None


def extract_answer(text: str, *, order: Sequence[str] = DEFAULT_ORDER) -> str | None:
    """The final answer of `text` by the first strategy in `order` that finds one; None if none does."""
    if not isinstance(text, str) or not text:
        return None
    for name in order:
        answer = EXTRACTORS.get(name)(text)
        if answer is not None:
            return answer
    return None
