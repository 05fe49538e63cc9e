"""The sections of report.md, each built from the stages' metrics alone, and the plots beside them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from prmkit.bench.report import fmt, line_plot, markdown_table
from prmkit.report.headline import (
    MAJORITY_BENCH,
    MAJORITY_SEARCH,
    ORACLE_BENCH,
    Comparison,
    bestofn_comparison,
    describe,
    pct,
    search_comparison,
)
from prmkit.report.inputs import Stage, decoding_name, expand, label_audits, policy_accuracy, read_stage
from prmkit.report.recipe import ReportRecipe
from prmkit.search import report as search_report

REPORT = "report.md"
BESTOFN_PNG = "bestofn.png"
SEARCH_PNG = "search_accuracy_vs_tokens.png"


class Inputs:
    """Every stage the recipe names, read once (None: left out of the report by the recipe)."""

    def __init__(self, recipe: ReportRecipe) -> None:
        r = recipe.runs
        one = lambda name, folder: None if folder is None else read_stage(name, folder)  # noqa: E731
        self.policy = one("policy (prmkit train, sft)", r.policy)
        self.sample = one("test draw (prmkit sample)", r.sample)
        self.annotate = [read_stage("step labels (prmkit annotate)", f) for f in expand(r.annotate)]
        self.prm = one("PRM training (prmkit train, prm)", r.prm)
        self.processbench = one("ProcessBench (prmkit bench)", r.processbench)
        self.bestofn = one("best-of-N (prmkit bench)", r.bestofn)
        self.search = one("search (prmkit search)", r.search)

    def all(self) -> list[Stage]:
        return [
            s
            for s in (self.policy, self.sample, *self.annotate, self.prm, self.processbench, self.bestofn, self.search)
            if s is not None
        ]


def _folder(stage: Stage | None) -> str:
    return stage.folder if stage is not None else "?"


def _guarded(stage: Stage | None, build: Callable[[dict[str, Any]], list[str]]) -> list[str]:
    """A section's lines, or the one line saying why there are none; a metrics file of an unexpected layout
    (another prmkit version) is reported, not a crash."""
    if stage is None:
        return []
    if not stage.ran:
        return [stage.missing_line(), ""]
    try:
        lines = build(stage.data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return [
            f"_{stage.name}: `{stage.folder}/metrics.json` has an unexpected layout ({type(exc).__name__}: {exc})._",
            "",
        ]
    if stage.note:
        lines.append(f"_Note: {stage.note}._")
    return [*lines, ""]


def compare_stage(stage: Stage | None, compare: Callable[[dict[str, Any]], Comparison | None]) -> Comparison | None:
    """The stage's comparison with majority vote; None when it has none (or metrics of another layout)."""
    if stage is None or not stage.ran:
        return None
    try:
        return compare(stage.data)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


# --- headline -------------------------------------------------------------------------------------------


def headline(inputs: Inputs) -> list[str]:
    parts: list[str] = []
    for stage, compare, label in (
        (inputs.bestofn, bestofn_comparison, "Best-of-N"),
        (inputs.search, search_comparison, "Search"),
    ):
        if stage is None:
            continue
        if not stage.ran:
            parts.append(f"**{label}:** no results ({stage.note}).")
            continue
        c = compare_stage(stage, compare)
        parts.append(
            f"**{label}:** "
            + (describe(c) if c else "no PRM-guided method and majority vote measured at the same N in these results.")
        )
    if not parts:
        parts.append(
            "No best-of-N or search results were named in the recipe, so there is nothing to set against majority vote."
        )
    context = context_sentence(inputs)
    return [line for paragraph in [*parts, context] if paragraph for line in (paragraph, "")]


def context_sentence(inputs: Inputs) -> str:
    """Why the numbers are what they are: the policy's accuracy, the labels' accuracy, the PRM's F1."""
    bits = []
    if inputs.policy is not None and inputs.policy.ran:
        accs = policy_accuracy(inputs.policy.data)
        if accs:
            bits.append(
                "the policy answers "
                + ", ".join(f"{pct(a)} {decoding_name(t)}" for t, a, _ in accs)
                + " of held-out problems"
            )
    for stage in inputs.annotate:
        for row in label_audits(stage) if stage.ran else []:
            if row.audit and row.audit.get("step_accuracy") is not None and row.labels == "labels":
                bits.append(f"its {row.method} step labels are {pct(row.audit['step_accuracy'])} right")
    if inputs.processbench is not None and inputs.processbench.ran:
        f1 = inputs.processbench.data.get("average_f1")
        bits.append(f"the PRM's first-error F1 on the planted-error set is {pct(f1)}")
    return ("For context: " + "; ".join(bits) + ".") if bits else ""


# --- sections -------------------------------------------------------------------------------------------


def policy_section(inputs: Inputs) -> list[str]:
    lines = ["## Policy", ""]

    def build(m: dict[str, Any]) -> list[str]:
        accs = policy_accuracy(m)
        if not accs:
            return ["_The policy run measured no final-answer accuracy (its recipe has no `eval.task`)._"]
        problems = (m.get("policy") or {}).get("problems")
        rows = [[decoding_name(t), a, p] for t, a, p in accs]
        return [
            f"Final-answer and process accuracy (every step right) on {problems} held-out problems, one solution each:",
            "",
            markdown_table(["decoding", "answer accuracy %", "process accuracy %"], rows, percent=True),
        ]

    lines += _guarded(inputs.policy, build)

    def build_sample(m: dict[str, Any]) -> list[str]:
        n = m.get("n")
        return [
            f"The test draw: {m['problems']} problems, {n} samples each; mean accuracy {pct(m.get('accuracy'))}, "
            f"majority vote @{n} {pct(m.get('majority_accuracy'))}, pass@{n} {pct(m.get('pass_at_n'))}."
        ]

    body = lines[2:] + _guarded(inputs.sample, build_sample)
    return lines[:2] + body if body else []


def annotate_section(inputs: Inputs) -> list[str]:
    lines = ["## Step labels (annotation)", ""]
    rows, missing = [], []
    for stage in inputs.annotate:
        if not stage.ran:
            missing.append(stage.missing_line())
            continue
        try:
            for row in label_audits(stage):
                a, cost = row.audit or {}, row.cost
                rows.append(
                    [
                        row.method + ("" if row.labels == "labels" else f" ({row.labels})"),
                        row.labelled,
                        a.get("step_accuracy"),
                        a.get("first_error_f1"),
                        a.get("first_error_error_acc"),
                        a.get("first_error_correct_acc"),
                        cost.get("rollouts_per_solution"),
                        cost.get("generated_tokens_per_solution"),
                        f"`{row.run}`",
                    ]
                )
        except (AttributeError, TypeError) as exc:
            missing.append(f"_{stage.name}: `{stage.folder}/metrics.json` has an unexpected layout ({exc})._")
        if stage.note and stage.ran:
            missing.append(f"_Note ({stage.folder}): {stage.note}._")
    if rows:
        lines += [
            "Labels against the exact truth (accuracies in percent; first-error F1 as ProcessBench defines "
            "it, n/a where no solution of that kind was labelled) and their cost per solution:",
            "",
            _table(
                [
                    "method",
                    "solutions",
                    "step acc",
                    "first-error F1",
                    "error acc",
                    "correct acc",
                    "rollouts / sol.",
                    "gen. tokens / sol.",
                    "run",
                ],
                rows,
                percent_cols={2, 3, 4, 5},
            ),
            "",
        ]
        if any(r[2] is None for r in rows):
            lines += ["_A row without accuracies: that run's data carried no truth to audit against._", ""]
    body = [*lines[2:], *missing, *([""] if missing else [])]
    return lines[:2] + body if body else []


def _table(header: list[str], rows: list[list[Any]], percent_cols: set[int]) -> str:
    """A markdown table with some columns in percent and the rest as they are."""
    shown = [
        [fmt(v, percent=i in percent_cols) if not isinstance(v, str) else v for i, v in enumerate(r)] for r in rows
    ]
    return markdown_table(header, shown)


def processbench_section(inputs: Inputs) -> list[str]:
    lines = ["## PRM: first errors on the planted-error set", ""]

    def build(m: dict[str, Any]) -> list[str]:
        per = m["subsets"]
        rows = [
            [name, s["n_error"] + s["n_correct"], s["error_acc"], s["correct_acc"], s["f1"]] for name, s in per.items()
        ]
        if len(per) > 1:
            rows.append(["average (unweighted F1)", "", None, None, m.get("average_f1")])
        how = f"threshold {m['threshold']:g}" if m.get("threshold") is not None else "predicted indices"
        out = [
            f"ProcessBench metrics ({m.get('source', 'PRM')}, {how}); in percent. F1 is the harmonic mean of "
            "the accuracy on erroneous solutions (first error found exactly) and on correct ones (no error "
            "flagged).",
            "",
            _table(["subset", "samples", "error acc", "correct acc", "F1"], rows, percent_cols={2, 3, 4}),
        ]
        baselines = m.get("baselines")
        if isinstance(baselines, dict) and baselines:
            out += [
                "",
                "Baselines the bench computed, for comparison:",
                "",
                _table(["baseline", "F1"], [[k, _f1_of(v)] for k, v in baselines.items()], percent_cols={1}),
            ]
        return out

    lines += _guarded(inputs.processbench, build)

    def build_prm(m: dict[str, Any]) -> list[str]:
        e = m.get("eval") or {}
        if "first_error_f1" not in e:
            return ["_The PRM run recorded no evaluation on the planted-error set._"]
        return [
            f"During training (`{_folder(inputs.prm)}`, evaluated on the planted-error records): first-error F1 "
            f"{pct(e.get('first_error_f1'))}, step F1 {pct(e.get('step_f1'))}, step accuracy "
            f"{pct(e.get('step_accuracy'))}."
        ]

    body = lines[2:] + _guarded(inputs.prm, build_prm)
    return lines[:2] + body if body else []


def _f1_of(value: Any) -> float | None:
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, dict):
        for key in ("average_f1", "f1"):
            if isinstance(value.get(key), (int, float)):
                return float(value[key])
    return None


def bestofn_section(inputs: Inputs, out_dir: Path) -> list[str]:
    lines = ["## Best-of-N: accuracy against N", ""]

    def build(m: dict[str, Any]) -> list[str]:
        ns = sorted(int(n) for n in m["accuracy"])
        table = {n: m["accuracy"][str(n)] for n in ns}
        methods = list(table[ns[0]])
        order = [x for x in methods if x.startswith("prm_")] + [
            x for x in (MAJORITY_BENCH, ORACLE_BENCH) if x in methods
        ]
        order += [x for x in methods if x not in order]
        line_plot(
            out_dir / BESTOFN_PNG,
            ns,
            {x: [table[n].get(x) for n in ns] for x in order},
            f"Best-of-N ({m.get('problems')} problems)",
            "N (samples per problem)",
            "accuracy (%)",
        )
        return [
            f"{m.get('problems')} test problems, {m.get('samples_per_problem')} samples each, scored by the "
            f"PRM; every N < {m.get('samples_per_problem')} averages {m.get('trials')} random subsets of the one "
            "draw. prm_<agg>: the sample with the best aggregate step score; prm_weighted_vote: answers weighted "
            "by it; majority_vote: plain vote; pass@N: some sample right (oracle). Accuracy in percent.",
            "",
            markdown_table(["N", *order], [[str(n), *[table[n].get(x) for x in order]] for n in ns], percent=True),
            "",
            f"![best-of-N accuracy against N]({BESTOFN_PNG})",
        ]

    body = _guarded(inputs.bestofn, build)
    return lines + body if body else []


def search_section(inputs: Inputs, out_dir: Path) -> list[str]:
    lines = ["## Search: accuracy against generated tokens", ""]

    def build(m: dict[str, Any]) -> list[str]:
        png = search_report.plot(m, out_dir / SEARCH_PNG)
        methods = m["methods"]
        budgets = sorted({int(n) for e in methods.values() for n in e["budgets"]})
        order = sorted(methods, key=lambda label: methods[label].get("method") != MAJORITY_SEARCH)  # majority first
        rows = [
            [
                label + (" (no PRM)" if methods[label].get("method") == MAJORITY_SEARCH else ""),
                *[_cell(methods[label]["budgets"].get(str(n))) for n in budgets],
            ]
            for label in order
        ]
        out = [
            "Every method at every budget N; each cell is accuracy in percent (generated tokens per problem). "
            f"The search run's own `{_folder(inputs.search)}/report.md` adds the oracle, PRM-scored tokens and "
            "wall time.",
            "",
            markdown_table(["method", *[f"N = {n}" for n in budgets]], rows),
        ]
        if png is not None:
            out += ["", f"![search accuracy against generated tokens]({png.name})"]
        return out

    body = _guarded(inputs.search, build)
    return lines + body if body else []


def _cell(budget: dict[str, Any] | None) -> str:
    if not budget:
        return "-"
    acc = "n/a" if budget.get("accuracy") is None else f"{100 * budget['accuracy']:.1f}"
    return f"{acc} ({budget.get('generated_tokens_per_problem', 0):.0f})"


def viewer_section(out_dir: Path) -> list[str]:
    """A link to the step viewer `prmkit view` wrote beside the report's folder (the quickstart's view.yaml)."""
    page = out_dir.parent / "view.html"
    if not page.is_file():
        return []
    return [
        "## Step viewer",
        "",
        f"[{page.name}](../{page.name}): every labelled solution, its steps coloured by label or PRM score, the "
        "label's, the PRM's and the truth's first errors marked, with filters and a search box (`prmkit view`).",
        "",
    ]


def inputs_section(inputs: Inputs) -> list[str]:
    lines = ["## Inputs", ""]
    for s in inputs.all():
        state = "read" if s.ran else "missing"
        lines.append(f"- {s.name}: `{s.folder}` ({state}{'; ' + s.note if s.note and s.ran else ''})")
    return [*lines, ""]


def build_report(recipe: ReportRecipe, out_dir: Path) -> tuple[str, Inputs]:
    inputs = Inputs(recipe)
    parts = [
        f"# {recipe.title}",
        "",
        *headline(inputs),
        *policy_section(inputs),
        *annotate_section(inputs),
        *processbench_section(inputs),
        *bestofn_section(inputs, out_dir),
        *search_section(inputs, out_dir),
        *viewer_section(out_dir),
        *inputs_section(inputs),
    ]
    return "\n".join(parts).rstrip() + "\n", inputs
