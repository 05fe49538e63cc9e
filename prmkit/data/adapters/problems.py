"""Problem sets with one reference solution each (GSM8K, MATH / MATH-500): gold solutions, no step labels."""

from __future__ import annotations

import re
from typing import Any

from prmkit.data.adapters.base import Adapter, Place, RowError, need_str, register, row_id
from prmkit.records import Record

GSM8K_ANSWER_MARK = "####"
CALCULATOR_RE = re.compile(r"<<[^<>]*>>")
PARAGRAPH_RE = re.compile(r"\n\s*\n")
BOXED_RE = re.compile(r"\\(?:boxed|fbox)\s*")


@register
class Gsm8kAdapter(Adapter):
    """GSM8K: `answer` is the worked solution, one step per line, ending with '#### <number>'.

    The reference is that number with thousands commas removed ('1,450,000' -> '1450000'). The
    `<<48/2=24>>` calculator annotations are stripped from the steps unless keep_calculator=True.
    """

    name = "gsm8k"
    signatures = (frozenset({"question", "answer"}),)

    def __init__(self, keep_calculator: bool = False) -> None:
        self.keep_calculator = keep_calculator

    def convert(self, row: dict[str, Any], place: Place) -> list[Record]:
        solution = need_str(row, "answer")
        if GSM8K_ANSWER_MARK not in solution:
            raise RowError(f"field 'answer' has no '{GSM8K_ANSWER_MARK} <number>' final line")
        body, _, final = solution.rpartition(GSM8K_ANSWER_MARK)
        reference = final.strip().replace(",", "")
        if not reference:
            raise RowError(f"field 'answer' has nothing after '{GSM8K_ANSWER_MARK}'")
        steps = [line.strip() for line in body.splitlines() if line.strip()]
        if not self.keep_calculator:
            steps = [CALCULATOR_RE.sub("", s) for s in steps]
        return [
            Record(
                id=row_id(row, place, "id"),
                problem=need_str(row, "question"),
                steps=steps,
                answer=reference,
                reference=reference,
                correct=True,
                meta={"layout": self.name},
            )
        ]


def last_boxed(text: str) -> str | None:
    """Content of the last \\boxed{...} / \\fbox{...} (nested braces respected), or None."""
    hits = list(BOXED_RE.finditer(text))
    for hit in reversed(hits):
        i = hit.end()
        if i < len(text) and text[i] == "{":
            depth = 0
            for j in range(i, len(text)):
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                if depth == 0:
                    return text[i + 1 : j].strip()
        else:  # '\boxed 5' form: up to the next '$' or whitespace
            m = re.match(r"[^\s$]+", text[i:])
            if m:
                return m.group(0)
    return None


def _open_block(chunk: str) -> bool:
    """True while a paragraph leaves an [asy] picture, $$ display or \\begin environment open."""
    return (
        chunk.count("[asy]") > chunk.count("[/asy]")
        or chunk.count("$$") % 2 == 1
        or len(re.findall(r"\\begin\{", chunk)) > len(re.findall(r"\\end\{", chunk))
    )


def split_paragraphs(solution: str) -> list[str]:
    """Steps of a written solution: its paragraphs, never cutting an [asy] picture or display block in two."""
    steps: list[str] = []
    for part in PARAGRAPH_RE.split(solution.strip()):
        if steps and _open_block(steps[-1]):
            steps[-1] = f"{steps[-1]}\n\n{part}"
        elif part.strip():
            steps.append(part.strip())
    return steps


@register
class MathAdapter(Adapter):
    """MATH / MATH-500: {problem, solution[, answer]}; the reference is `answer`, else the solution's last \\boxed{}.

    Steps are the solution's paragraphs (blank-line separated).
    """

    name = "math"
    signatures = (frozenset({"problem", "solution"}),)

    def convert(self, row: dict[str, Any], place: Place) -> list[Record]:
        solution = need_str(row, "solution")
        given = row.get("answer")
        if given is not None and not isinstance(given, str):
            given = str(given)
        reference = given if given not in (None, "") else last_boxed(solution)
        meta: dict[str, Any] = {"layout": self.name}
        for key in ("subject", "type", "level"):
            if row.get(key) is not None:
                meta[key] = row[key]
        return [
            Record(
                id=row_id(row, place, "unique_id", "id"),
                problem=need_str(row, "problem"),
                steps=split_paragraphs(solution),
                answer=reference,
                reference=reference,
                correct=True,
                meta=meta,
            )
        ]
