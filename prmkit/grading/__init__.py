"""Answer grading: pull the final answer out of a solution, and compare it with the reference.

Stable API: `extract_answer(text) -> str | None` and `is_equivalent(prediction, reference) -> bool`.
`judge` also says which stage decided; `warm_up` starts the symbolic worker ahead of time.
"""

from prmkit.grading.equivalence import Verdict, is_equivalent, judge, warm_up
from prmkit.grading.extract import EXTRACTORS, extract_answer

__all__ = ["EXTRACTORS", "Verdict", "extract_answer", "is_equivalent", "judge", "warm_up"]
