"""A canonical spelling of a LaTeX answer, for the cheap string-equality stage.

Most reference/prediction pairs that are equal differ only in typography: `\\left(` vs `(`,
`\\dfrac` vs `\\frac`, spaces, `\\!`, a `$...$` or `\\text{...}` wrapper, a trailing period, a
degree sign. Removing those makes them byte-equal without any parsing, so sympy runs only for
genuinely different spellings. Plain `str.replace` passes: linear, no regex.
"""

from __future__ import annotations

_REPLACEMENTS = (
    ("\\left", ""),
    ("\\right", ""),
    ("\\displaystyle", ""),
    ("\\dfrac", "\\frac"),
    ("\\tfrac", "\\frac"),
    ("\\!", ""),
    ("\\,", ""),
    ("\\;", ""),
    ("\\:", ""),
    ("\\ ", ""),
    ("~", ""),
    ("^{\\circ}", ""),
    ("^\\circ", ""),
    ("\\circ", ""),
    ("°", ""),
    ("\\$", ""),
)
_WRAPPERS = ("\\text{", "\\textbf{", "\\mathrm{", "\\mathbf{", "\\boxed{")


def _unwrap(s: str) -> str:
    """Drop a `$...$` or a single command wrapping the whole answer, e.g. `\\text{Evelyn}`."""
    for _ in range(3):
        s = s.strip()
        if len(s) >= 2 and s[0] == "$" and s[-1] == "$":
            s = s[1:-1]
            continue
        for w in _WRAPPERS:
            if s.startswith(w) and s.endswith("}") and _closes_at_end(s, len(w) - 1):
                s = s[len(w) : -1]
                break
        else:
            return s
    return s.strip()


def _closes_at_end(s: str, open_at: int) -> bool:
    """True when the '{' at `open_at` is closed by the final character (so the wrapper is whole)."""
    depth = 0
    for i in range(open_at, len(s)):
        c = s[i]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i == len(s) - 1
    return False


def normalize(answer: str) -> str:
    """Canonical spelling: wrappers, spacing commands, `\\left`/`\\right`, degree signs and whitespace removed."""
    s = _unwrap(answer)
    for old, new in _REPLACEMENTS:
        s = s.replace(old, new)
    s = "".join(s.split())
    return s.rstrip(".")
