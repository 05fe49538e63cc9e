"""Verifiable task families ("embedded worlds"): problems whose every step can be checked exactly.

A stage picks a family by name (`get_task(recipe.task)`) and uses it only through this interface,
so a new family is one module plus one registration line:

- `name`, `step_style` ("lines": one step per line of the solution text)
- `difficulty(spec, where)` -> the family's difficulty object from a preset name or recipe mapping
- `make_problems(n, seed, difficulty, start=0)`, `problem_at(index, seed, difficulty)`:
  deterministic for (seed, index), so shards and resumed runs reproduce the same problems
- `parse_problem(text, id)`: rebuild a problem from a record's problem text
- `prompt(problem)` -> the policy prompt; `split_steps(text)` -> steps of a generated solution
- `reference_solution(problem)` -> steps; `to_record(problem, steps=None)` -> a labelled Record
- `check(problem, steps)` / `check_record(record)` -> exact per-step verdicts, `first_error`,
  `labels`, `correct` (process) and `answer_correct` (outcome); `final_answer(steps)` -> str | None
- `planted_errors(n, seed, difficulty, **options)` -> ProcessBench-style Records with a known first
  error; `to_processbench_row(record)` -> a dict with exactly ProcessBench's fields
"""

from __future__ import annotations

from typing import Any, Protocol

from prmkit.records import Record
from prmkit.registry import Registry
from prmkit.tasks.arithmetic import ArithmeticTask


class Task(Protocol):
    """The interface every task family offers (see the module docstring)."""

    name: str
    step_style: str

    def difficulty(self, spec: Any = None, where: str = "difficulty") -> Any: ...
    def make_problems(self, n: int, seed: int, difficulty: Any = None, start: int = 0) -> list[Any]: ...
    def problem_at(self, index: int, seed: int, difficulty: Any = None) -> Any: ...
    def parse_problem(self, text: str, id: str = "") -> Any: ...
    def prompt(self, problem: Any) -> str: ...
    def reference_solution(self, problem: Any) -> list[str]: ...
    def split_steps(self, text: str) -> list[str]: ...
    def check(self, problem: Any, steps: list[str]) -> Any: ...
    def check_record(self, record: Record) -> Any: ...
    def final_answer(self, steps: list[str]) -> str | None: ...
    def to_record(self, problem: Any, steps: list[str] | None = None) -> Record: ...
    def planted_errors(self, n: int, seed: int, difficulty: Any = None, **options: Any) -> list[Record]: ...
    def to_processbench_row(self, record: Record) -> dict[str, Any]: ...


TASKS: Registry[Task] = Registry("task")
TASKS.register("arithmetic")(ArithmeticTask())


def get_task(name: str) -> Task:
    """The task family registered under `name`; an unknown name is a RecipeError listing the allowed ones."""
    return TASKS.get(name)


__all__ = ["TASKS", "Task", "get_task"]
