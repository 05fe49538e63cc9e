"""The report's headline: did PRM-guided selection beat majority vote at the same N, and by how much.

Everything is computed from the bench and search metrics. At the largest N both measured, the best
PRM-guided variant (named, with how many were tried) is set against plain majority vote; the difference is
given in points with its noise, so a win inside the noise is called that and not a win. Best-of-N metrics
carry the paired 95% interval over the test problems (`paired_vs_majority`, same problems and subsets for
both methods); without it (search, older metrics) the noise is two standard errors of a difference of two
independent accuracies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

MAJORITY_BENCH = "majority_vote"
ORACLE_BENCH = "pass@N"
MAJORITY_SEARCH = "majority"
"""The search method (`method` in metrics.json) that is plain majority vote, using no PRM."""


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def points(x: float) -> str:
    return f"{'+' if x > 0 else '−' if x < 0 else '±'}{abs(100 * x):.1f} points"


@dataclass
class Comparison:
    """The best PRM-guided method against majority vote at one N."""

    setting: str
    n: int
    method: str
    prm: float
    majority: float
    problems: int
    variants: int
    """How many PRM-guided methods were compared (the best one is named)."""
    above_at: list[int] = field(default_factory=list)
    """The N > 1 at which some PRM-guided method was above majority vote."""
    compared_at: list[int] = field(default_factory=list)
    oracle: float | None = None
    prm_tokens: float | None = None
    majority_tokens: float | None = None
    paired_ci95: tuple[float, float] | None = None
    """The paired 95% interval of the difference, when the metrics carry one."""

    @property
    def diff(self) -> float:
        return self.prm - self.majority

    @property
    def noise(self) -> float:
        """Half the paired 95% interval when known; else two standard errors of the difference of two accuracies
        over `problems` problems."""
        if self.paired_ci95 is not None:
            return (self.paired_ci95[1] - self.paired_ci95[0]) / 2
        var = self.prm * (1 - self.prm) + self.majority * (1 - self.majority)
        return 2 * math.sqrt(var / self.problems) if self.problems else float("inf")

    @property
    def verdict(self) -> str:
        """beat | within_noise | tied | below."""
        if abs(self.diff) < 1e-12:
            return "tied"
        if self.diff < 0:
            return "below"
        if self.paired_ci95 is not None:
            return "beat" if self.paired_ci95[0] > 0 else "within_noise"
        return "beat" if self.diff > self.noise else "within_noise"


def _best(accs: dict[str, float]) -> tuple[str, float]:
    return max(accs.items(), key=lambda kv: kv[1])  # first listed wins ties


def bestofn_comparison(metrics: dict[str, Any]) -> Comparison | None:
    """From `prmkit bench` bestofn metrics: PRM selection (prm_<agg>) and PRM-weighted vote against majority."""
    table = metrics.get("accuracy") or {}
    ns = sorted(int(n) for n in table)
    rows = {n: table[str(n)] for n in ns}
    usable = [n for n in ns if rows[n].get(MAJORITY_BENCH) is not None and _prm_bench(rows[n])]
    if not usable:
        return None
    top = usable[-1]
    method, acc = _best(_prm_bench(rows[top]))
    compared = [n for n in usable if n > 1]
    above = [n for n in compared if _best(_prm_bench(rows[n]))[1] > rows[n][MAJORITY_BENCH] + 1e-12]
    paired = ((metrics.get("paired_vs_majority") or {}).get(str(top)) or {}).get(method)
    ci = (paired["ci95_low"], paired["ci95_high"]) if isinstance(paired, dict) and "ci95_low" in paired else None
    return Comparison(
        "best-of-N",
        top,
        method,
        acc,
        rows[top][MAJORITY_BENCH],
        int(metrics.get("problems") or 0),
        len(_prm_bench(rows[top])),
        above,
        compared,
        rows[top].get(ORACLE_BENCH),
        paired_ci95=ci,
    )


def _prm_bench(row: dict[str, Any]) -> dict[str, float]:
    return {k: v for k, v in row.items() if k.startswith("prm_") and v is not None}


def search_comparison(metrics: dict[str, Any]) -> Comparison | None:
    """From `prmkit search` metrics: every PRM-guided method against the majority method, per budget N."""
    methods = metrics.get("methods") or {}
    majority = next((label for label, e in methods.items() if e.get("method") == MAJORITY_SEARCH), None)
    if majority is None:
        return None
    maj = {int(n): b for n, b in methods[majority]["budgets"].items() if b.get("accuracy") is not None}

    def prm_at(n: int) -> dict[str, float]:
        return {
            label: e["budgets"][str(n)]["accuracy"]
            for label, e in methods.items()
            if label != majority
            and e.get("method") != MAJORITY_SEARCH
            and e["budgets"].get(str(n), {}).get("accuracy") is not None
        }

    usable = sorted(n for n in maj if prm_at(n))
    if not usable:
        return None
    top = usable[-1]
    method, acc = _best(prm_at(top))
    compared = [n for n in usable if n > 1]
    above = [n for n in compared if _best(prm_at(n))[1] > maj[n]["accuracy"] + 1e-12]
    chosen = methods[method]["budgets"][str(top)]
    return Comparison(
        "search",
        top,
        method,
        acc,
        maj[top]["accuracy"],
        int(maj[top].get("problems") or 0),
        len(prm_at(top)),
        above,
        compared,
        maj[top].get("oracle"),
        chosen.get("generated_tokens_per_problem"),
        maj[top].get("generated_tokens_per_problem"),
    )


def describe(c: Comparison) -> str:
    """The comparison in words: the verdict first, then the numbers behind it."""
    lead = {
        "beat": "PRM-guided selection **beat majority vote**",
        "within_noise": "PRM-guided selection was **above majority vote, but only within sampling noise**",
        "tied": "PRM-guided selection **tied with majority vote**",
        "below": "PRM-guided selection **did not beat majority vote**",
    }[c.verdict]
    which = f"the best of {c.variants} PRM-guided methods" if c.variants > 1 else "the PRM-guided method"
    if c.paired_ci95 is not None:
        noise = (
            f"paired 95% interval over {c.problems} problems: {100 * c.paired_ci95[0]:+.1f} to "
            f"{100 * c.paired_ci95[1]:+.1f} points"
        )
    else:
        noise = f"over {c.problems} problems, differences within about ±{100 * c.noise:.1f} points are sampling noise"
    text = (
        f"{lead}: at N = {c.n}, {which}, `{c.method}`, reached {pct(c.prm)} against majority vote's "
        f"{pct(c.majority)}, **{points(c.diff)}** ({noise})"
    )
    if c.prm_tokens is not None and c.majority_tokens:
        if abs(c.prm_tokens - c.majority_tokens) <= 0.005 * c.majority_tokens:
            text += f", at the same generated tokens ({c.majority_tokens:.0f} per problem)"
        else:
            text += (
                f", generating {c.prm_tokens:.0f} tokens per problem against majority vote's {c.majority_tokens:.0f}"
            )
    text += "."
    if len(c.compared_at) > 1:
        over = f" Over N = {', '.join(map(str, c.compared_at))}, "
        if not c.above_at:
            text += over + "no PRM-guided method was above majority vote at any N."
        elif c.above_at == c.compared_at:
            text += over + "some PRM-guided method was above majority vote at every N."
        else:
            text += (
                over + f"some PRM-guided method was above majority vote only at N = {', '.join(map(str, c.above_at))}."
            )
    if c.oracle is not None:
        text += (
            f" A right answer was among the candidates for {pct(c.oracle)} of problems at N = {c.n} "
            f"(the oracle), the most any selection could reach."
        )
    return text
