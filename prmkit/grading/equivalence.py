"""Is a predicted answer the same as the reference? Cheapest test first, sympy last and time-bounded.

Stages, in order (the `stage` of a `Verdict` names the one that decided):
1. `number`: both sides are plain numbers -> exact `Fraction` comparison, decided here (also when
   unequal, so '0.333' is not '1/3' and no float tolerance can turn a wrong answer right).
2. `string`: equal after typographic normalisation (`\\dfrac`/`\\frac`, `\\left(`, spaces, ...).
3. `guard`: inputs sympy cannot finish (power towers, deep nesting, long or control-character
   strings) are declared unequal without trying; see `guards.py`.
4. `symbolic`: math-verify (`parse` + `verify`, reference as gold) in a sandbox worker process
   killed at the deadline; see `sandbox.py` for why not math-verify's signal-based timeouts.
   `timeout` means the worker gave no answer in time (counted as unequal).

On GSM8K all pairs end at stage 1; on MATH-500 most end at 1 or 2 (see benchmarks/grading.py).
Model output is data: nothing here calls eval/exec, and nothing raises on garbage.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from prmkit.grading import guards, sandbox
from prmkit.grading.normalize import normalize
from prmkit.grading.numeric import numbers_equal, parse_number

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 1.0
_HOUSEKEEPING_S = 0.05
"""Kept back from the sandbox's share for waking up, killing an overrunning worker and logging: 20 ms was not
enough on a loaded 2-core box (a fresh-clone `make test` returned after 1.008 s of a 1 s budget)."""
_MAX_TEXT_CHARS = 10_000  # an "answer" longer than this is compared only byte for byte


@dataclass(frozen=True)
class Verdict:
    """The decision and the stage that made it (number, string, guard, symbolic, timeout, empty, long)."""

    equal: bool
    stage: str


def judge(prediction: str | None, reference: str | None, *, timeout: float = DEFAULT_TIMEOUT_S) -> Verdict:
    """Compare two extracted answers and say which stage decided; never raises on bad input."""
    started = time.monotonic()
    if not isinstance(prediction, str) or not isinstance(reference, str):
        return Verdict(False, "empty")
    pred, ref = prediction.strip(), reference.strip()
    if not pred or not ref:
        return Verdict(False, "empty")
    if len(pred) > _MAX_TEXT_CHARS or len(ref) > _MAX_TEXT_CHARS:
        return Verdict(pred == ref, "long")
    a, b = parse_number(pred), parse_number(ref)
    if a is not None and b is not None:
        return Verdict(numbers_equal(a, b), "number")
    pred_n, ref_n = normalize(pred), normalize(ref)
    if pred_n == ref_n:
        return Verdict(True, "string")
    for side in (pred_n, ref_n):
        reason = guards.too_risky_for_sympy(side)
        if reason is not None:
            log.debug("not comparing symbolically: %s", reason)
            return Verdict(False, "guard")
    remaining = timeout - (time.monotonic() - started) - _HOUSEKEEPING_S
    verdict = sandbox.POOL.compare(pred, ref, remaining) if remaining > 0 else None
    if verdict is None:
        log.warning("symbolic comparison gave no answer within %.2f s; counted as unequal", timeout)
        return Verdict(False, "timeout")
    return Verdict(verdict, "symbolic")


def is_equivalent(prediction: str | None, reference: str | None, *, timeout: float = DEFAULT_TIMEOUT_S) -> bool:
    """True when `prediction` denotes the same answer as `reference`; returns within `timeout` seconds."""
    try:
        return judge(prediction, reference, timeout=timeout).equal
    except Exception:  # a bug in a cheap stage must not crash a long grading run
        log.debug("grading failed", exc_info=True)
        return False


def warm_up(workers: int = 1) -> bool:
    """Start symbolic workers now (about 1-2 s each, once), so no later call pays a start-up.

    Call it with the number of threads that will grade concurrently: a call that finds every
    worker busy waits within its own time budget.
    """
    return sandbox.POOL.warm_up(workers)
