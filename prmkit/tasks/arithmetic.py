"""The embedded arithmetic world: multi-step arithmetic whose every step can be checked exactly.

Why: it lets the whole pipeline run on a laptop CPU with a tiny character-level policy trained in
minutes, and it knows the true first error of any solution, so automatic step labels (Monte-Carlo,
binary search, judges) can be audited against the truth.

Format (compact and regular so a char-level model learns it fast; step style "lines")::

    prompt  "Start at 17. Add 23. Multiply by 4. Subtract 35. What is the result?\\n"
    steps   "17 + 23 = 40" / "40 * 4 = 160" / "160 - 35 = 125" / "The answer is 125."

Problem sentences: "Add b" (+), "Subtract b" (-), "Multiply by b" (*), "Divide by b" (/, exact,
opt-in through `Difficulty.ops`). A problem with n operations has a solution of n operation steps
followed by one answer step.

What counts as an error (the checker is the truth for label audits)
-------------------------------------------------------------------
Each step is judged against the problem and the value the solution itself carried into it: the
result claimed by its previous step (the start value for step 0). A wrong value carried on by
otherwise correct steps therefore makes only its first step wrong, as in ProcessBench.

* Operation step k < n must read ``a OP b = c``: integers of ASCII digits (at most 30, optional
  minus sign), optional spaces and final period, OP one of ``+ - * /`` (aliases ``x X × · ÷ −``).
  OP must be the problem's k-th operation, b its operand and a the carried value (for + and * the
  two operands may swap), and c must equal a OP b exactly (for / the division must be exact).
  Otherwise the step is wrong, for the first reason that applies: ``garbage`` (unparseable or empty),
  ``premature_answer`` (an answer before the last operation), ``wrong_operation`` (a skipped or
  reordered operation, or a wrong operator), ``underived_value`` (a is not the carried value),
  ``wrong_operand``, ``arithmetic`` (for + and * the problem's operand is matched first, so when the
  carried value equals the operand a slip in either slot reads ``underived_value``). After a step without a value
  (garbage or an early answer) the next step's left operand cannot be checked; operator, operand and arithmetic
  still are.
* Step n must read ``The answer is X`` (case-insensitive, optional period) with X the carried
  value; otherwise ``wrong_answer``, ``extra_operation`` (one more operation) or ``garbage``.
* Every step after step n is wrong (``extra_step``).

`first_error` is the first wrong step (-1 when none). A solution whose written steps are all right
but which stops before its answer step is unfinished: first_error -1, complete False, correct
False. `correct` is the process verdict (complete and no wrong step); `answer_correct` is the
outcome verdict (`final_answer`, the number after the last "answer is", equals the true result).
Step labels are prefix truths: 1.0 before first_error, 0.0 from it on.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from prmkit.errors import DataError, RecipeError
from prmkit.records import Record
from prmkit.registry import Registry

TASK_NAME = "arithmetic"
GENERATOR = "prmkit-arithmetic-planted"
MAX_DIGITS = 30  # longer numbers are garbage: cheap to parse, far beyond any value of the world

# --------------------------------------------------------------------------- operations


@dataclass(frozen=True)
class Op:
    """One operation of the world: its symbol in steps, its sentence in problems, its arithmetic."""

    symbol: str
    phrase: str
    commutative: bool
    fn: Callable[[int, int], int | None]


def _exact_div(a: int, b: int) -> int | None:
    if b == 0 or a % b:
        return None
    return a // b


OPS: dict[str, Op] = {
    "+": Op("+", "Add", True, lambda a, b: a + b),
    "-": Op("-", "Subtract", False, lambda a, b: a - b),
    "*": Op("*", "Multiply by", True, lambda a, b: a * b),
    "/": Op("/", "Divide by", False, _exact_div),
}
_PHRASE_TO_SYMBOL = {op.phrase.lower(): op.symbol for op in OPS.values()}
_SYMBOL_ALIASES = {"+": "+", "-": "-", "−": "-", "*": "*", "x": "*", "X": "*", "×": "*", "·": "*", "/": "/", "÷": "/"}


def apply(op: str, a: int, b: int) -> int | None:
    """a OP b, or None when the result is not an integer (inexact or zero division)."""
    return OPS[op].fn(a, b)


# --------------------------------------------------------------------------- difficulty


class Difficulty(BaseModel):
    """The knobs of the generator. Every value of a problem's chain stays in [min_value, max_value]."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_ops: int = Field(3, ge=1, le=64)
    max_ops: int = Field(5, ge=1, le=64)
    start_min: int = Field(1, ge=0)
    start_max: int = Field(50, ge=0)
    add_min: int = Field(1, ge=1)
    add_max: int = Field(50, ge=1)
    mul_min: int = Field(2, ge=2)
    mul_max: int = Field(9, ge=2)
    min_value: int = Field(0, ge=0)
    max_value: int = Field(199, ge=1, le=10**12)
    ops: tuple[str, ...] = ("+", "-", "*")

    @model_validator(mode="after")
    def _consistent(self) -> Difficulty:
        for lo, hi in (
            ("min_ops", "max_ops"),
            ("start_min", "start_max"),
            ("add_min", "add_max"),
            ("mul_min", "mul_max"),
            ("min_value", "max_value"),
        ):
            if getattr(self, lo) > getattr(self, hi):
                raise ValueError(f"{lo} ({getattr(self, lo)}) is above {hi} ({getattr(self, hi)})")
        bad = [o for o in self.ops if o not in OPS]
        if bad or len(set(self.ops)) != len(self.ops):
            raise ValueError(f"ops must be distinct names from {', '.join(OPS)}; got {list(self.ops)}")
        if "+" not in self.ops or "-" not in self.ops:
            raise ValueError("ops must include '+' and '-' (they keep every value movable within range)")
        if not (self.min_value <= self.start_min and self.start_max <= self.max_value):
            raise ValueError("start_min..start_max must lie within min_value..max_value")
        if self.max_value - self.min_value < 2 * self.add_min:
            raise ValueError("min_value..max_value must be at least 2 * add_min wide")
        return self


# A Registry, not a dict, though only this task reads it: a recipe names the preset (`difficulty: small`), and an
# unknown name should get the registry's error listing the presets, with its "did you mean".
DIFFICULTIES: Registry[Difficulty] = Registry("arithmetic difficulty")
DIFFICULTIES.register("easy")(Difficulty(min_ops=2, max_ops=3, add_max=20, mul_max=5, max_value=99, start_max=20))
DIFFICULTIES.register("small")(Difficulty(min_ops=3, max_ops=4, start_max=20, add_max=9, mul_max=3, max_value=60))
DIFFICULTIES.register("medium")(Difficulty())
DIFFICULTIES.register("long")(Difficulty(min_ops=8, max_ops=12))  # GSM8K-length chains (about 8-12 steps)
DIFFICULTIES.register("hard")(
    Difficulty(min_ops=4, max_ops=6, add_max=99, mul_max=12, max_value=999, start_max=99, ops=("+", "-", "*", "/"))
)


def as_difficulty(spec: Difficulty | str | dict[str, Any] | None = None, where: str = "difficulty") -> Difficulty:
    """A Difficulty from a preset name, a recipe mapping or None (the medium default).

    A mapping may hold `preset: NAME` plus fields overriding it. Bad input is a RecipeError naming
    the key at `where` and what is allowed.
    """
    if spec is None:
        return DIFFICULTIES.get("medium")
    if isinstance(spec, Difficulty):
        return spec
    if isinstance(spec, str):
        return DIFFICULTIES.get(spec)
    if not isinstance(spec, dict):
        raise RecipeError(
            f"{where}: expected a preset name ({', '.join(DIFFICULTIES.names())}) or a mapping, "
            f"got {type(spec).__name__}"
        )
    fields = dict(spec)
    base = DIFFICULTIES.get(str(fields.pop("preset", "medium")))
    try:
        return Difficulty.model_validate({**base.model_dump(), **fields})
    except ValidationError as e:
        err = e.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        allowed = ", ".join(["preset", *Difficulty.model_fields])
        msg = err["msg"].removeprefix("Value error, ")
        raise RecipeError(f"{where}{'.' + key if key else ''}: {msg} (keys: {allowed})") from None


# --------------------------------------------------------------------------- problems


@dataclass(frozen=True)
class Problem:
    """A start value and a chain of (operation, operand) pairs; everything else derives from them."""

    start: int
    ops: tuple[tuple[str, int], ...]
    id: str = ""
    seed: int | None = None
    index: int | None = None
    difficulty: Difficulty | None = None

    @property
    def text(self) -> str:
        parts = [f"Start at {self.start}."] + [f"{OPS[o].phrase} {b}." for o, b in self.ops]
        return " ".join(parts + ["What is the result?"])

    @property
    def values(self) -> list[int]:
        """v0 = start, v_k = v_{k-1} OP_k b_k: the true value after each operation."""
        vals = [self.start]
        for o, b in self.ops:
            r = apply(o, vals[-1], b)
            if r is None:
                raise DataError(f"problem {self.id or self.text!r}: {vals[-1]} {o} {b} is not exact")
            vals.append(r)
        return vals

    @property
    def answer(self) -> int:
        return self.values[-1]


def _pick_op(rng: random.Random, v: int, d: Difficulty) -> tuple[str, int]:
    """A uniformly chosen operation that keeps the value in range, with a uniform operand."""
    choices: list[tuple[str, Sequence[int]]] = []
    if "+" in d.ops and v + d.add_min <= d.max_value:
        choices.append(("+", range(d.add_min, min(d.add_max, d.max_value - v) + 1)))
    if "-" in d.ops and v - d.add_min >= d.min_value:
        choices.append(("-", range(d.add_min, min(d.add_max, v - d.min_value) + 1)))
    if "*" in d.ops and v > 0 and v * d.mul_min <= d.max_value:
        choices.append(("*", range(d.mul_min, min(d.mul_max, d.max_value // v) + 1)))
    if "/" in d.ops and v > 0:
        divisors = [k for k in range(d.mul_min, d.mul_max + 1) if v % k == 0 and v // k >= d.min_value]
        if divisors:
            choices.append(("/", divisors))
    if not choices:  # ruled out by Difficulty's validator; kept loud rather than looping
        raise RuntimeError(f"no operation keeps {v} within {d.min_value}..{d.max_value}")
    op, operands = choices[rng.randrange(len(choices))]
    return op, rng.choice(operands)


def problem_at(index: int, seed: int, difficulty: Difficulty | str | dict | None = None) -> Problem:
    """Problem number `index` of the stream `seed`: depends on nothing else, so shards and resumed runs agree."""
    if index < 0:
        raise ValueError(f"problem index must be >= 0, got {index}")
    d = as_difficulty(difficulty)
    rng = random.Random(f"{TASK_NAME}:{seed}:{index}")  # str seeds hash with sha512: stable across runs
    n = rng.randint(d.min_ops, d.max_ops)
    v = rng.randint(d.start_min, d.start_max)
    start, ops = v, []
    for _ in range(n):
        o, b = _pick_op(rng, v, d)
        ops.append((o, b))
        v = apply(o, v, b)  # type: ignore[assignment]  # exact by construction
    return Problem(start, tuple(ops), id=f"arith-{seed}-{index}", seed=seed, index=index, difficulty=d)


def generate(n: int, seed: int, difficulty: Difficulty | str | dict | None = None, start: int = 0) -> list[Problem]:
    """Problems start .. start+n-1 of the stream `seed`."""
    d = as_difficulty(difficulty)
    return [problem_at(i, seed, d) for i in range(start, start + n)]


_PROBLEM_RE = re.compile(r"Start at (\d{1,30})\.((?: [A-Za-z ]+? \d{1,30}\.)*) What is the result\?", re.ASCII)
_SENTENCE_RE = re.compile(r" ([A-Za-z ]+?) (\d{1,30})\.", re.ASCII)


def parse_problem(text: str, id: str = "") -> Problem:
    """The Problem behind a problem text, so any record of this world can be checked from its text alone."""
    m = _PROBLEM_RE.fullmatch(text.strip())
    if not m:
        raise DataError(f"not an arithmetic-world problem: {text[:80]!r}")
    ops = []
    for phrase, num in _SENTENCE_RE.findall(m.group(2)):
        sym = _PHRASE_TO_SYMBOL.get(phrase.lower())
        if sym is None:
            raise DataError(
                f"unknown operation {phrase!r} in problem {text[:80]!r}; "
                f"allowed: {', '.join(op.phrase for op in OPS.values())}"
            )
        ops.append((sym, int(num)))
    return Problem(int(m.group(1)), tuple(ops), id=id)


def prompt(problem: Problem) -> str:
    """The policy's prompt: the problem text and a newline; the solution's steps follow, one per line."""
    return problem.text + "\n"


# --------------------------------------------------------------------------- solutions


def op_line(a: int, op: str, b: int, c: int) -> str:
    return f"{a} {op} {b} = {c}"


def answer_line(x: int) -> str:
    return f"The answer is {x}."


def _chain_lines(value: int, ops: Iterable[tuple[str, int]]) -> tuple[list[str], int] | None:
    """Correct steps applying `ops` from `value`, and the final value; None if a value goes negative or inexact."""
    lines = []
    for o, b in ops:
        r = apply(o, value, b)
        if r is None or r < 0:
            return None
        lines.append(op_line(value, o, b, r))
        value = r
    return lines, value


def reference_solution(problem: Problem) -> list[str]:
    """One operation per step, then the answer step."""
    vals = problem.values
    lines = [op_line(vals[k], o, b, vals[k + 1]) for k, (o, b) in enumerate(problem.ops)]
    return lines + [answer_line(vals[-1])]


def solution_text(steps: list[str]) -> str:
    return "\n".join(steps)


def split_steps(text: str) -> list[str]:
    """Steps of a generated solution: its non-blank lines, stripped."""
    return [s.strip() for s in text.splitlines() if s.strip()]


# --------------------------------------------------------------------------- checking

_NUM = rf"(-?[0-9]{{1,{MAX_DIGITS}}})"
_OP_STEP_RE = re.compile(rf"\s*{_NUM}\s*([-+*/xX×·÷−])\s*{_NUM}\s*=\s*{_NUM}\s*\.?\s*")
_ANSWER_STEP_RE = re.compile(rf"\s*the answer is\s+{_NUM}\s*\.?\s*", re.IGNORECASE)
_ANSWER_ANYWHERE_RE = re.compile(rf"answer is\s*{_NUM}(?![0-9])", re.IGNORECASE)


@dataclass(frozen=True)
class Check:
    """The exact verdict on one solution; see the module docstring for the rules."""

    valid: tuple[bool, ...]
    reasons: tuple[str, ...]
    first_error: int
    complete: bool
    answer: int | None
    answer_correct: bool

    @property
    def correct(self) -> bool:
        """Process verdict: every step right and the answer step reached."""
        return self.complete and self.first_error == -1

    @property
    def labels(self) -> list[float]:
        """Prefix truths: 1.0 before the first error, 0.0 from it on."""
        n = len(self.valid)
        fe = n if self.first_error < 0 else self.first_error
        return [1.0] * fe + [0.0] * (n - fe)


def _parse_op_step(step: str) -> tuple[int, str, int, int] | None:
    m = _OP_STEP_RE.fullmatch(step)
    if not m:
        return None
    return int(m.group(1)), _SYMBOL_ALIASES[m.group(2)], int(m.group(3)), int(m.group(4))


def _parse_answer_step(step: str) -> int | None:
    m = _ANSWER_STEP_RE.fullmatch(step)
    return int(m.group(1)) if m else None


def final_answer(steps: list[str]) -> int | None:
    """The number after the last "answer is" in the solution (the outcome rule, lenient about the rest)."""
    for step in reversed(steps):
        hits = _ANSWER_ANYWHERE_RE.findall(step)
        if hits:
            return int(hits[-1])
    return None


def _judge_op_step(step: str, carried: int | None, op: str, operand: int) -> tuple[str, int | None]:
    """(reason, value carried out) for an operation step."""
    parsed = _parse_op_step(step)
    if parsed is None:
        return ("premature_answer" if _parse_answer_step(step) is not None else "garbage"), None
    a, o, b, c = parsed
    if o != op:
        return "wrong_operation", c
    if OPS[o].commutative:  # {a, b} must be {carried, operand}; the operand's text is matched first
        if operand not in (a, b):
            return ("wrong_operand" if carried is None or carried in (a, b) else "underived_value"), c
        other = b if a == operand else a
        if carried is not None and other != carried:
            return "underived_value", c
    elif carried is not None and a != carried:
        return "underived_value", c
    elif b != operand:
        return "wrong_operand", c
    if apply(o, a, b) != c:
        return "arithmetic", c
    return "ok", c


def check(problem: Problem, steps: list[str]) -> Check:
    """Per-step verdicts and the true first error of any solution text; never raises on model output."""
    n = len(problem.ops)
    truth = problem.answer
    reasons: list[str] = []
    carried: int | None = problem.start
    for k, step in enumerate(steps):
        if k < n:
            reason, carried = _judge_op_step(step, carried, *problem.ops[k])
        elif k == n:
            x = _parse_answer_step(step)
            if x is not None:
                reason = "ok" if carried is not None and x == carried else "wrong_answer"
            else:
                reason = "extra_operation" if _parse_op_step(step) is not None else "garbage"
        else:
            reason = "extra_step"
        reasons.append(reason)
    valid = tuple(r == "ok" for r in reasons)
    first_error = next((i for i, ok in enumerate(valid) if not ok), -1)
    answer = final_answer(steps)
    return Check(valid, tuple(reasons), first_error, len(steps) > n, answer, answer is not None and answer == truth)


def check_record(record: Record) -> Check:
    """Check a record of this world from its problem text and steps."""
    return check(parse_problem(record.problem, record.id), record.steps)


def to_record(problem: Problem, steps: list[str] | None = None) -> Record:
    """A labelled Record: the reference solution by default, or any solution labelled by the checker."""
    steps = reference_solution(problem) if steps is None else list(steps)
    verdict = check(problem, steps)
    meta: dict[str, Any] = {
        "task": TASK_NAME,
        "seed": problem.seed,
        "index": problem.index,
        "first_error": verdict.first_error,
    }
    if problem.difficulty is not None:
        meta["difficulty"] = problem.difficulty.model_dump()
    if verdict.first_error >= 0:
        meta["error_reason"] = verdict.reasons[verdict.first_error]
    return Record(
        id=problem.id or "arith-" + hashlib.sha1(problem.text.encode()).hexdigest()[:12],
        problem=problem.text,
        steps=steps,
        answer=None if verdict.answer is None else str(verdict.answer),
        reference=str(problem.answer),
        correct=verdict.answer_correct,
        labels=verdict.labels,
        meta=meta,
    )


# --------------------------------------------------------------------------- planted errors


@dataclass(frozen=True)
class Planter:
    """One kind of planted error: where it can go and how to write a solution with it at step k.

    `build` returns the full solution (later steps continue correctly from the wrong value) or None
    when no variant fits this problem at k (e.g. a continuation would need an inexact division).
    """

    positions: Callable[[Problem], list[int]]
    build: Callable[[Problem, int, random.Random], list[str] | None]


PLANTERS: Registry[Planter] = Registry("planted error type")


def _near(x: int, rng: random.Random) -> list[int]:
    """Plausible slips of a number, in random order: off by one, two or ten, digits reversed."""
    cands = [x + 1, x - 1, x + 2, x - 2, x + 10, x - 10, int(str(abs(x))[::-1]) * (1 if x >= 0 else -1)]
    rng.shuffle(cands)
    return list(dict.fromkeys(c for c in cands if c != x))


def _continue(problem: Problem, head: list[str], value: int, rest: Iterable[tuple[str, int]]) -> list[str] | None:
    """`head`, then correct steps from `value` over `rest`, then the answer: an error propagated consistently."""
    tail = _chain_lines(value, rest)
    if tail is None:
        return None
    lines, final = tail
    return head + lines + [answer_line(final)]


def _op_positions(p: Problem) -> list[int]:
    return list(range(len(p.ops)))


def _plant_arithmetic(p: Problem, k: int, rng: random.Random) -> list[str] | None:
    o, b = p.ops[k]
    a, c = p.values[k], p.values[k + 1]
    for c2 in _near(c, rng):
        if c2 >= 0 and (out := _continue(p, reference_solution(p)[:k] + [op_line(a, o, b, c2)], c2, p.ops[k + 1 :])):
            return out
    return None


def _plant_operand(p: Problem, k: int, rng: random.Random) -> list[str] | None:
    o, b = p.ops[k]
    a = p.values[k]
    others = [y for _, y in p.ops if y != b]
    rng.shuffle(others)
    for b2 in others[:2] + _near(b, rng):
        c2 = apply(o, a, b2) if b2 > 0 else None
        if c2 is not None and c2 >= 0 and b2 != b:
            if out := _continue(p, reference_solution(p)[:k] + [op_line(a, o, b2, c2)], c2, p.ops[k + 1 :]):
                return out
    return None


def _plant_underived(p: Problem, k: int, rng: random.Random) -> list[str] | None:
    o, b = p.ops[k]
    a = p.values[k]
    stale = [p.values[k - 1]] if k >= 1 else []  # the value before last: a skipped-back copy
    for a2 in stale + _near(a, rng):
        c2 = apply(o, a2, b)
        if a2 >= 0 and a2 != a and c2 is not None and c2 >= 0:
            if out := _continue(p, reference_solution(p)[:k] + [op_line(a2, o, b, c2)], c2, p.ops[k + 1 :]):
                return out
    return None


def _plant_operator(p: Problem, k: int, rng: random.Random) -> list[str] | None:
    o, b = p.ops[k]
    a = p.values[k]
    alts = [x for x in OPS if x != o]
    rng.shuffle(alts)
    for o2 in alts:
        c2 = apply(o2, a, b)
        if c2 is not None and c2 >= 0:
            if out := _continue(p, reference_solution(p)[:k] + [op_line(a, o2, b, c2)], c2, p.ops[k + 1 :]):
                return out
    return None


def _plant_skip(p: Problem, k: int, rng: random.Random) -> list[str] | None:
    n = len(p.ops)
    head = reference_solution(p)[:k]
    if k == n - 1:  # skipping the last operation: the answer comes one step early
        return head + [answer_line(p.values[k])]
    if p.ops[k + 1] == p.ops[k]:  # skipping one of two equal operations writes a correct step
        return None
    return _continue(p, head, p.values[k], p.ops[k + 1 :])


def _plant_reorder(p: Problem, k: int, rng: random.Random) -> list[str] | None:
    if p.ops[k + 1] == p.ops[k]:
        return None
    swapped = [p.ops[k + 1], p.ops[k], *p.ops[k + 2 :]]
    return _continue(p, reference_solution(p)[:k], p.values[k], swapped)


def _plant_answer(p: Problem, k: int, rng: random.Random) -> list[str] | None:
    truth = p.answer
    earlier = [v for v in p.values[-2::-1] if v != truth][:1]  # copying the value before last
    for x in earlier + _near(truth, rng):
        if x >= 0 and x != truth:
            return reference_solution(p)[:-1] + [answer_line(x)]
    return None


PLANTERS.register("arithmetic")(Planter(_op_positions, _plant_arithmetic))
PLANTERS.register("operand")(Planter(_op_positions, _plant_operand))
PLANTERS.register("underived")(Planter(_op_positions, _plant_underived))
PLANTERS.register("operator")(Planter(_op_positions, _plant_operator))
PLANTERS.register("skip")(Planter(_op_positions, _plant_skip))
PLANTERS.register("reorder")(Planter(lambda p: list(range(len(p.ops) - 1)), _plant_reorder))
PLANTERS.register("answer")(Planter(lambda p: [len(p.ops)], _plant_answer))


def plant(problem: Problem, rng: random.Random, types: list[str] | None = None) -> tuple[list[str], str, int]:
    """A solution with one planted error: (steps, error type, error step).

    The type is drawn uniformly from `types`, then the step uniformly from its positions; a draw
    that does not fit the problem falls through to the next. The "answer" type always fits.
    """
    names = list(types or PLANTERS.names())
    for name in names:
        PLANTERS.get(name)  # unknown names fail as a RecipeError before any work
    rng.shuffle(names)
    for name in names:
        planter = PLANTERS.get(name)
        ks = planter.positions(problem)
        rng.shuffle(ks)
        for k in ks:
            steps = planter.build(problem, k, rng)
            if steps is not None:
                return steps, name, k
    raise RecipeError(f"planted error types {names} fit no step of problem {problem.id!r}; add 'answer'")


def _is_correct_slot(index: int, share: float) -> bool:
    """Exactly floor(n * share) of the first n indices are correct, spread evenly, for any n: shard-proof."""
    return int((index + 1) * share) - int(index * share) == 1


def planted_errors(
    n: int,
    seed: int,
    difficulty: Difficulty | str | dict | None = None,
    *,
    correct_share: float = 0.5,
    types: list[str] | None = None,
    start: int = 0,
) -> list[Record]:
    """A ProcessBench-style benchmark: reference solutions, a share untouched, the rest with one planted error.

    meta["first_error"] is the true index (-1 untouched), meta["error_type"] the planted kind;
    labels are prefix truths and `correct` is the outcome (a planted error can leave the answer right).
    """
    if not 0.0 <= correct_share <= 1.0:
        raise RecipeError(f"correct_share must be within 0..1, got {correct_share}")
    d = as_difficulty(difficulty)
    records = []
    for index in range(start, start + n):
        problem = problem_at(index, seed, d)
        if _is_correct_slot(index, correct_share):
            steps, kind, k = reference_solution(problem), None, -1
        else:
            rng = random.Random(f"{TASK_NAME}-plant:{seed}:{index}")
            steps, kind, k = plant(problem, rng, types)
        rec = to_record(problem, steps)
        rec.meta.update({"first_error": k, "error_type": kind, "generator": GENERATOR})
        rec.meta.pop("error_reason", None)
        records.append(rec)
    return records


PROCESSBENCH_FIELDS = ("id", "generator", "problem", "steps", "final_answer_correct", "label")


def to_processbench_row(record: Record) -> dict[str, Any]:
    """Exactly ProcessBench's fields: label is the 0-based first wrong step, -1 when none."""
    label = record.meta.get("first_error")
    return {
        "id": record.id,
        "generator": record.meta.get("generator", GENERATOR),
        "problem": record.problem,
        "steps": list(record.steps),
        "final_answer_correct": bool(record.correct),
        "label": int(label) if label is not None else record.first_error,
    }


# --------------------------------------------------------------------------- the task object


class ArithmeticTask:
    """The "arithmetic" entry of prmkit.tasks.TASKS: the common task interface over this module."""

    name = TASK_NAME
    step_style = "lines"

    def difficulty(self, spec: Difficulty | str | dict | None = None, where: str = "difficulty") -> Difficulty:
        return as_difficulty(spec, where)

    def make_problems(
        self, n: int, seed: int, difficulty: Difficulty | str | dict | None = None, start: int = 0
    ) -> list[Problem]:
        return generate(n, seed, difficulty, start)

    def problem_at(self, index: int, seed: int, difficulty: Difficulty | str | dict | None = None) -> Problem:
        return problem_at(index, seed, difficulty)

    def parse_problem(self, text: str, id: str = "") -> Problem:
        return parse_problem(text, id)

    def prompt(self, problem: Problem) -> str:
        return prompt(problem)

    def reference_solution(self, problem: Problem) -> list[str]:
        return reference_solution(problem)

    def split_steps(self, text: str) -> list[str]:
        return split_steps(text)

    def check(self, problem: Problem, steps: list[str]) -> Check:
        return check(problem, steps)

    def check_record(self, record: Record) -> Check:
        return check_record(record)

    def final_answer(self, steps: list[str]) -> str | None:
        x = final_answer(steps)
        return None if x is None else str(x)

    def to_record(self, problem: Problem, steps: list[str] | None = None) -> Record:
        return to_record(problem, steps)

    def planted_errors(
        self, n: int, seed: int, difficulty: Difficulty | str | dict | None = None, **options: Any
    ) -> list[Record]:
        return planted_errors(n, seed, difficulty, **options)

    def to_processbench_row(self, record: Record) -> dict[str, Any]:
        return to_processbench_row(record)
