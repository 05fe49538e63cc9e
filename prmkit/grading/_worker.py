"""The sandbox process: reads comparison requests as JSON lines on stdin, answers on stdout.

It runs math-verify with its own signal timeouts off (they only work in a main thread and round
to whole seconds) and bounds each request with a sub-second `setitimer` soft timeout instead, so
a slow pure-Python sympy call ends without losing the warm process. What the timer cannot stop
(C code that does not poll for signals, a frozen process) the parent ends by killing the whole
process. Memory is capped with RLIMIT_AS so a runaway expression fails with MemoryError instead
of swapping.

Protocol, one JSON object per line:  {"id": n, "pred": str, "ref": str, "budget": seconds}
-> {"id": n, "ok": bool}. The first line written is {"ready": true}, after the WARM_UP comparisons.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys

MEMORY_LIMIT_BYTES = int(os.environ.get("PRMKIT_GRADER_MEMORY", str(2 * 1024**3)))


# One pair per kind of answer: the LaTeX parser builds its prediction tables and sympy imports
# its solvers lazily, on first use. Measured: the first tuple comparison of a fresh process took
# 0.54 s, a similar one afterwards 0.01-0.15 s. Paying this at start-up (about 1.3 s, once per
# worker) keeps that first-use cost out of every call's 1 s budget.
WARM_UP = (
    ("\\frac{1}{2}", "0.5"),
    ("(3, \\pi)", "(3, 2)"),
    ("\\frac{\\pi}{2}", "\\pi/2"),
    ("\\sqrt{2}/2", "\\frac{1}{\\sqrt2}"),
    ("[0,1)", "[0,1]"),
    ("x=5", "5"),
    ("(x+1)^2", "x^2+2x+1"),
    ("\\{1,2\\}", "\\{2,1\\}"),
    ("6-5i", "6 - 5i"),
    ("\\text{(C)}", "C"),
    ("\\begin{pmatrix}1\\\\2\\end{pmatrix}", "\\begin{pmatrix}1\\\\3\\end{pmatrix}"),
    ("x>2", "(2,\\infty)"),
    ("\\log_2 8", "3"),
    ("\\sin x", "\\cos x"),
    ("10\\%", "0.1"),
    ("90^\\circ", "\\frac{\\pi}{2}"),
)


class SoftTimeout(BaseException):
    """Raised by the interval timer; a BaseException so that sympy's `except Exception` cannot swallow it."""


def _on_alarm(signum: int, frame: object) -> None:
    raise SoftTimeout()


def _limit_memory() -> None:
    try:
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = MEMORY_LIMIT_BYTES if hard == resource.RLIM_INFINITY else min(hard, MEMORY_LIMIT_BYTES)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, ValueError, OSError):
        pass  # not POSIX, or a stricter limit is already in force


def _as_latex(answer: str) -> str:
    """Wrap a bare answer in $...$ so math-verify's LaTeX extractor sees the whole of it."""
    return "$" + answer.replace("$", " ") + "$"


def compare(pred: str, ref: str) -> bool:
    """math-verify's symbolic equivalence of two bare answers; `ref` is the gold side."""
    from math_verify import parse, verify

    gold = parse(_as_latex(ref), parsing_timeout=None)
    guess = parse(_as_latex(pred), parsing_timeout=None)
    if not gold or not guess:
        return False
    return bool(verify(gold, guess, timeout_seconds=None))


def _answer(request: dict, has_timer: bool) -> bool:
    budget = float(request.get("budget", 1.0))
    if has_timer:
        signal.setitimer(signal.ITIMER_REAL, max(budget, 0.001))
    try:
        return compare(str(request["pred"]), str(request["ref"]))
    except SoftTimeout:
        return False
    except Exception:  # garbage in, False out: never let one answer kill the loop
        return False
    finally:
        if has_timer:
            signal.setitimer(signal.ITIMER_REAL, 0)


def main() -> None:
    out = sys.stdout
    sys.stdout = sys.stderr  # stray prints from libraries must not corrupt the protocol
    logging.disable(logging.CRITICAL)  # math-verify warns once that its own timeouts are off
    _limit_memory()
    has_timer = hasattr(signal, "setitimer")
    if has_timer:
        signal.signal(signal.SIGALRM, _on_alarm)
    for pred, ref in WARM_UP:
        compare(pred, ref)
    out.write('{"ready": true}\n')
    out.flush()
    for line in sys.stdin:
        try:
            request = json.loads(line)
        except ValueError:
            continue
        if not isinstance(request, dict):
            continue
        try:
            ok = _answer(request, has_timer)
        except SoftTimeout:  # the timer fired between the try blocks
            ok = False
        out.write(json.dumps({"id": request.get("id"), "ok": ok}) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
