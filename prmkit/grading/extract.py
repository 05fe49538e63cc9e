"""Pull the final answer out of a solution's text.

The extraction order, documented (`extract_answer`):
1. Markers, named in `EXTRACTORS` and listed in `DEFAULT_ORDER`: a `\\boxed{}` (MATH, PRM800K, most
   instruction-tuned models), GSM8K's `#### X`, and "answer is X" with its variants ("The answer is: X",
   "the answer to this problem is X", "Final answer: X", "**Answer:** X").
2. When markers disagree, the one written LAST in the text wins: a model that writes "#### 1" and then
   "The answer is: 6" has answered 6 (its last word on the matter), and a box followed by "the answer is"
   is a correction.
3. A marker whose content is a sentence or a computation ("2 + 5 = 7", "Verna received $7.00 in change")
   gives its final expression (below) instead of the whole text.
4. No marker (real solutions often end "Therefore, Elvis is 54 miles east of his house."): the final
   expression of the last sentence that holds a number, as math-verify and lm-eval's flexible extract do:
   the last math span ($..$, \\(..\\), \\[..\\]) and the right-hand side of its last '='; else, in plain
   text, the number after the last "is / are / was / were / has / have / had / equals / total of / =" in that
   sentence; else the sentence's last number. `fallback=False` turns this step off (to ask "did the
   text state an answer?", as search does to end a solution).

Everything is plain string scanning in linear time: a regex cannot match nested braces, and model text is
untrusted, so no pattern may backtrack.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence

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


Located = tuple[int, str]
"""(where the marker starts in the text, the answer it gives)."""
LOCATORS: Registry[Callable[[str], Located | None]] = Registry("answer marker")


@LOCATORS.register("boxed")
def _locate_boxed(text: str) -> Located | None:
    answer = extract_boxed(text)
    if answer is None:
        return None
    return max(i for i, _ in _box_starts(text)), answer


@LOCATORS.register("gsm8k")
def _locate_gsm8k(text: str) -> Located | None:
    i = text.rfind("####")
    if i < 0:
        return None
    answer = _rest_of_line(text, i + 4).strip().replace(",", "").rstrip(".").strip()
    return (i, answer) if answer else None


@EXTRACTORS.register("gsm8k")
def extract_gsm8k(text: str) -> str | None:
    """The text after the last '####' on its line, thousands commas removed ('1,000' -> '1000')."""
    found = _locate_gsm8k(text)
    return found[1] if found else None


_ANSWER = "answer"
_ANSWER_GAP = 40
"""At most this many characters between "answer" and its "is" ("the answer to this problem is 8")."""


def _answer_marker_end(lower: str, i: int) -> int:
    """Where the answer text starts after the word "answer" at `i`, or -1 when no "is" / ":" follows it closely
    on the same sentence ("answer is", "answer is:", "answer: ", "answer to the question is")."""
    j = i + len(_ANSWER)
    if j < len(lower) and (lower[j].isalpha() or (i > 0 and lower[i - 1].isalpha())):
        return -1  # "answered", "answers", "reanswer"
    window = lower[j : j + _ANSWER_GAP]
    k = 0
    while k < len(window) and window[k] in " *:\t":
        if window[k] == ":":
            return j + k + 1
        k += 1
    stop = min((p for p in (window.find(". "), window.find("\n")) if p >= 0), default=len(window))
    at = window.find(" is", 0, stop)
    while at >= 0:
        after = j + at + 3
        if after >= len(lower) or not lower[after].isalpha():
            return after
        at = window.find(" is", at + 1, stop)
    return -1


@LOCATORS.register("answer_is")
def _locate_answer_is(text: str) -> Located | None:
    lower = text.lower()
    i = lower.rfind(_ANSWER)
    while i >= 0:
        start = _answer_marker_end(lower, i)
        if start >= 0:
            answer = _answer_text(text, start)
            if answer:
                return i, answer
        i = lower.rfind(_ANSWER, 0, i)
    return None


def _answer_text(text: str, start: int) -> str | None:
    rest = _rest_of_line(text, start).strip()
    while rest.startswith((":", "*")):
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


@EXTRACTORS.register("answer_is")
def extract_answer_is(text: str) -> str | None:
    """After the last "answer is" (any case, also "answer is:", "answer: ", "the answer to this problem is"): up
    to the end of the sentence or line."""
    found = _locate_answer_is(text)
    return found[1] if found else None


_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_CUE = re.compile(r"(?:\b(?:is|are|was|were|has|have|had|equals|equal to|total of|be)\b|=)", re.IGNORECASE)
_TEXT_CMD = re.compile(r"\\(?:text|mathrm|textbf|mbox)\{[^{}]*\}")
_MATH_SPAN = re.compile(r"\$\$([^$]*)\$\$|\$([^$]*)\$|\\\((.*?)\\\)|\\\[(.*?)\\\]", re.DOTALL)


def _number(text: str) -> str | None:
    m = _NUMBER.search(text)
    return m.group().replace(",", "").rstrip(".") if m else None


def _last_number(text: str) -> str | None:
    found = None
    for m in _NUMBER.finditer(text):
        found = m
    return found.group().replace(",", "").rstrip(".") if found else None


def _sentences(text: str) -> list[str]:
    """Sentences of one paragraph: cut at '. ', '! ', '? ' and line breaks (a decimal point is not a cut)."""
    out, start = [], 0
    for i, c in enumerate(text):
        if c == "\n" or (c in ".!?" and (i + 1 == len(text) or text[i + 1] in " \t")):
            out.append(text[start : i + 1])
            start = i + 1
    out.append(text[start:])
    return [s.strip() for s in out if s.strip()]


def _math_result(span: str) -> str | None:
    """The right-hand side of a math span's last '=' (units in \\text{} and '\\$', '\\%' removed)."""
    body = _TEXT_CMD.sub("", span).replace("\\$", "").replace("\\%", "").replace("\\!", "")
    body = body.split("=")[-1].strip().rstrip(".,;").strip()
    return body or None


FALLBACK_WINDOW = 2000
"""The no-marker fallback reads only the last this-many characters of a text."""


def final_expression(text: str) -> str | None:
    """The answer of a text with no marker (rule 4 of the module docstring), or None when it holds no number."""
    if not isinstance(text, str):
        return None
    # Only the text's end is read: a final sentence is short, and a bound keeps every scan linear on hostile text.
    for sentence in reversed(_sentences(text[-FALLBACK_WINDOW:])):
        if not any(c.isdigit() for c in sentence):
            continue
        spans = [next(g for g in m.groups() if g is not None) for m in _MATH_SPAN.finditer(sentence)]
        spans = [sp for sp in spans if any(c.isdigit() for c in sp)]
        if spans:
            result = _math_result(spans[-1])
            if result:
                return result
        cue = None
        for m in _CUE.finditer(sentence):
            if _number(sentence[m.end() : m.end() + 30]) is not None:
                cue = m
        if cue is not None:
            return _number(sentence[cue.end() :])
        return _last_number(sentence)
    return None


_LATEX_CMD = re.compile(r"\\[A-Za-z]+(?:\{[A-Za-z*]*\})?")
_WORD = re.compile(r"[A-Za-z]{4,}")


def _plain(answer: str) -> bool:
    """An answer that is an expression, not a sentence: no run of 4+ letters outside LaTeX commands."""
    return _WORD.search(_LATEX_CMD.sub("", answer)) is None


def _refine(answer: str, marker: str) -> str:
    """Rule 3: a marker's content that is a computation ("answer is 2 + 5 = 7") or a sentence gives its final
    expression. A box keeps an equation whole ("y = 2x + 3" is a MATH answer)."""
    if marker == "answer_is" and "=" in answer and "\\" not in answer:
        rhs = answer.rsplit("=", 1)[1].strip().rstrip(".")
        if rhs:
            answer = rhs
    if not _plain(answer):
        found = final_expression(answer)
        if found is not None:
            return found
    return answer


@EXTRACTORS.register("last_number")
def extract_last_number(text: str) -> str | None:
    """The last number in the text ('1,234.5' -> '1234.5'). Not in DEFAULT_ORDER: it guesses.

    `final_expression`, the default fallback, guesses better (it reads the last sentence's result); this one is
    kept for recipes that name it."""
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


def extract_answer(text: str, *, order: Sequence[str] = DEFAULT_ORDER, fallback: bool = True) -> str | None:
    """The final answer of `text`, by the documented order (module docstring); None if none is found.

    Markers in `order` are all looked for and the one written last wins; names in `order` that are not
    markers (`last_number`) are tried after them, in order; then, with `fallback`, `final_expression`."""
    if not isinstance(text, str) or not text:
        return None
    found: list[tuple[int, str, str]] = []
    for name in order:
        if name in LOCATORS:
            hit = LOCATORS.get(name)(text)
            if hit is not None:
                found.append((hit[0], hit[1], name))
        else:
            EXTRACTORS.get(name)  # an unknown name is a RecipeError listing the allowed ones
    if found:
        _, answer, marker = max(found, key=lambda h: h[0])
        return _refine(answer, marker)
    for name in order:
        if name not in LOCATORS:
            extracted = EXTRACTORS.get(name)(text)
            if extracted is not None:
                return extracted
    return final_expression(text) if fallback else None
