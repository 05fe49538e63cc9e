"""Exact values of plain numeric answers, the common case, with no sympy involved.

GSM8K answers and most MATH answers are numbers written a few ways ('1,000', '$18', '+5',
'0.5', '1/2', '\\frac{1}{2}', '50\\%', '90^\\circ'). Parsing them into a `Fraction` is exact
(no float rounding: 0.1 + 0.2 style surprises cannot make a wrong answer right) and takes
microseconds, against milliseconds for math-verify. Every pattern is anchored and free of nested
quantifiers, so matching is linear in the input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

_MAX_DIGITS = 1000  # beyond this a "number" is garbage, and int() of it gets slow
_MAX_EXPONENT = 400  # 1e999999999 would build a billion-digit integer

_DECIMAL = re.compile(r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|\.\d+")
_SCIENTIFIC = re.compile(r"(\d+(?:\.\d*)?|\.\d+)[eE]([+-]?\d{1,4})")
_SLASH = re.compile(r"(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)")
_FRAC = re.compile(r"\\[dt]?frac\s*\{\s*(\d+(?:\.\d+)?)\s*\}\s*\{\s*(\d+(?:\.\d+)?)\s*\}")
_FRAC_DIGITS = re.compile(r"\\[dt]?frac(\d)(\d)")  # \frac12

_PREFIXES = ("\\$", "$")
_UNIT_SUFFIXES = ("^{\\circ}", "^\\circ", "\\circ", "°")
_PERCENT_SUFFIXES = ("\\%", "%")
_SPACING = ("\\!", "\\,", "\\;", "\\:", "\\ ", "~")


@dataclass(frozen=True)
class Number:
    """An exact value; `percent` remembers a '%' so that '50%' may also match 0.5."""

    value: Fraction
    percent: bool = False


def _strip_wrappers(s: str) -> str:
    s = s.strip()
    for _ in range(2):
        if len(s) >= 2 and s[0] == "$" and s[-1] == "$":
            s = s[1:-1].strip()
        if s.startswith("\\text{") and s.endswith("}") and s.count("{") == 1:
            s = s[6:-1].strip()
    for sp in _SPACING:
        s = s.replace(sp, "")
    return s.strip().rstrip(".").strip()


def _magnitude(s: str) -> Fraction | None:
    """Value of an unsigned number token, or None when it is not one of the plain forms."""
    if len(s) > _MAX_DIGITS:
        return None
    if _DECIMAL.fullmatch(s):
        return Fraction(s.replace(",", ""))
    m = _SCIENTIFIC.fullmatch(s)
    if m and abs(int(m.group(2))) <= _MAX_EXPONENT:
        return Fraction(s)
    m = _SLASH.fullmatch(s) or _FRAC.fullmatch(s) or _FRAC_DIGITS.fullmatch(s)
    if m:
        den = Fraction(m.group(2))
        return Fraction(m.group(1)) / den if den else None
    return None


def parse_number(text: str) -> Number | None:
    """The exact value of a plain numeric answer, or None when `text` is anything else."""
    s = _strip_wrappers(text)
    percent = False
    for suffix in _PERCENT_SUFFIXES:
        if s.endswith(suffix):
            s, percent = s[: -len(suffix)].strip(), True
            break
    for suffix in _UNIT_SUFFIXES:
        if s.endswith(suffix):
            s = s[: -len(suffix)].strip()
            break
    sign = 1
    if s[:1] in ("+", "-", "−"):
        sign = -1 if s[0] != "+" else 1
        s = s[1:].strip()
    for prefix in _PREFIXES:
        if s.startswith(prefix):
            s = s[len(prefix) :].strip()
            break
    if s[:1] == "\\" and s[1:2].isdigit():  # `\15`: a '\$' that lost its dollar sign
        s = s[1:]
    value = _magnitude(s)
    return None if value is None else Number(sign * value, percent)


def numbers_equal(a: Number, b: Number) -> bool:
    """Exact equality; a percent on one side also matches its fraction on the other (50% = 0.5)."""
    if a.value == b.value:
        return True
    if a.percent != b.percent:
        pct, plain = (a, b) if a.percent else (b, a)
        return pct.value / 100 == plain.value
    return False
