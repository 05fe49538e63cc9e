"""Cheap checks that keep inputs sympy cannot finish away from it.

Measured with math-verify 0.9 on this machine: `10^{10^{10}}` and `9**9**9` do not finish (the
power is built as an integer; math-verify's own 1 s alarm had to stop both); parsing bare
nested braces grows exponentially (`{{{{{{{{{{1}}}}}}}}}}`, depth 10: 1.0 s; depth 16: 22 s);
bare parentheses cost about 35 ms per level. MATH-500 answers are at most 53 characters with
nesting depth 3. Rejecting such inputs up front costs microseconds, whereas letting them reach
the sandbox costs the whole time budget plus a worker restart. The sandbox's hard time limit
remains the real bound; these guards only make the common attack cheap.
"""

from __future__ import annotations

MAX_SYMBOLIC_CHARS = 400
MAX_NESTING = 8
MAX_EXPONENT_DIGITS = 5  # x^{99999} is fine for sympy; 10^{123456} as an integer is wasteful
MAX_FACTORIAL_DIGITS = 4  # 9999! has 35,660 digits; 99999! starts to hurt

_OPENERS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = frozenset(_OPENERS.values())


def nesting_depth(s: str) -> int:
    """Deepest nesting of (), [] and {} together (unmatched closers are ignored)."""
    depth = best = 0
    for c in s:
        if c in _OPENERS:
            depth += 1
            best = max(best, depth)
        elif c in _CLOSERS and depth:
            depth -= 1
    return best


def _operand_end(s: str, i: int) -> int:
    """End of the exponent operand starting at i: a {...}/(...) group, a number, a command or one character."""
    n = len(s)
    while i < n and s[i] == " ":
        i += 1
    if i >= n:
        return n
    c = s[i]
    if c in "{(":
        close, depth = _OPENERS[c], 0
        for j in range(i, n):
            if s[j] == c:
                depth += 1
            elif s[j] == close:
                depth -= 1
                if depth == 0:
                    return j + 1
        return n
    j = i + 1
    if c.isdigit() or c in "+-.":
        while j < n and (s[j].isdigit() or s[j] == "."):
            j += 1
    elif c == "\\":
        while j < n and s[j].isalpha():
            j += 1
    return j


_NUMERIC_CHARS = frozenset("0123456789{}()^*+-. ")


def _power_is_dangerous(s: str) -> bool:
    """True for an integer power sympy would have to build: a numeric tower or a many-digit exponent.

    `e^{x^2}` or `x^{y^z}` stay symbolic and are allowed; `10^{10^{10}}`, `9**9**9` and
    `2^{123456}` are not, because their exponent is itself a (large) number.
    """
    i, n = 0, len(s)
    while i < n:
        if s[i] == "^":
            start = i + 1
        elif s.startswith("**", i):
            start = i + 2
        else:
            i += 1
            continue
        end = _operand_end(s, start)
        operand = s[start:end]
        if set(operand) <= _NUMERIC_CHARS:
            chained = s[end:].lstrip().startswith(("^", "**"))
            if "^" in operand or "**" in operand or chained:
                return True
            if sum(ch.isdigit() for ch in operand) > MAX_EXPONENT_DIGITS:
                return True
        i = end
    return False


def _factorial_is_dangerous(s: str) -> bool:
    """A factorial of a literal with too many digits, e.g. 1000000!."""
    i = s.find("!")
    while i >= 0:
        j = i
        while j > 0 and s[j - 1].isdigit():
            j -= 1
        if i - j > MAX_FACTORIAL_DIGITS:
            return True
        i = s.find("!", i + 1)
    return False


def too_risky_for_sympy(s: str) -> str | None:
    """Why `s` must not reach sympy (for logs), or None when it may."""
    if len(s) > MAX_SYMBOLIC_CHARS:
        return f"longer than {MAX_SYMBOLIC_CHARS} characters"
    if any(ord(c) < 32 and c not in "\t\n\r" for c in s):
        return "control characters"
    if nesting_depth(s) > MAX_NESTING:
        return f"nested deeper than {MAX_NESTING}"
    if _power_is_dangerous(s):
        return "power tower or huge exponent"
    if _factorial_is_dangerous(s):
        return "factorial of a huge number"
    return None
