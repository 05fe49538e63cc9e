"""Best-of-N from `prmkit sample`'s samples.jsonl: PRM selection per aggregate, weighted and plain majority vote,
pass@N, for N = 1, 2, 4, ... subsampled from the one draw."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from prmkit.bench.bestofn import build_problem, default_ns, paired_against, per_problem_curves, within_problem_auc
from prmkit.bench.report import line_plot, markdown_table, rich_table
from prmkit.bench.runners import BENCHMARKS, Context, Outcome
from prmkit.engines.scoring import aggregate
from prmkit.errors import DataError, RecipeError


@BENCHMARKS.register("bestofn")
def run(ctx: Context) -> Outcome:
    metrics = compute(ctx)
    report, rows = render(ctx.out_dir, metrics)
    return Outcome(metrics, report, rows)


def _grouped(ctx: Context) -> tuple[list[Any], str, int]:
    """The samples grouped into problems with their aggregates, where their scores came from, and how many
    samples could not be graded."""
    recipe, spec = ctx.recipe, ctx.recipe.bestofn
    d = recipe.data
    records = d.load(unique_ids=False)
    if recipe.prm is not None:
        scores = ctx.score(records, "samples")
        source = f"PRM {recipe.prm.model}"
    else:
        if any(r.scores is None for r in records):
            raise RecipeError(f"{d.path}: some records carry no scores; add a prm: section to score them")
        scores = {r.id: r.scores or [] for r in records}
        source = f"scores in {d.path}"
    names = sorted(set(spec.aggregates) | {spec.weighted_aggregate})
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    skipped = 0
    for r in records:
        pid = r.meta.get("problem_id")
        if pid is None:
            raise DataError(f"{d.path}: record {r.id!r} has no meta.problem_id (best-of-N reads prmkit sample output)")
        if r.correct is None and r.reference is None:
            skipped += 1
            continue
        groups[str(pid)].append(
            {
                "answer": r.answer,
                "correct": r.correct,
                "reference": r.reference,
                "aggregates": aggregate(scores.get(r.id) or [], names),
            }
        )
    if not groups:
        raise DataError(f"{d.path}: no gradable samples (records need correct or reference)")
    return [build_problem(pid, samples) for pid, samples in groups.items()], source, skipped


def compute(ctx: Context) -> dict[str, Any]:
    """The metrics: accuracy of every method at every N, paired intervals against majority vote, the
    within-problem AUC of every aggregate, and the compute spent scoring."""
    recipe, spec = ctx.recipe, ctx.recipe.bestofn
    problems, source, skipped = _grouped(ctx)
    n_max = min(len(p.candidates) for p in problems)
    ns = sorted(n for n in (spec.ns or default_ns(n_max)) if n <= n_max)
    if not ns:
        raise RecipeError(f"bestofn.ns: every N is above the {n_max} samples drawn per problem")
    per = per_problem_curves(problems, ns, spec.trials, recipe.seed, spec.aggregates, spec.weighted_aggregate)
    names = sorted(set(spec.aggregates) | {spec.weighted_aggregate})
    metrics: dict[str, Any] = {
        "benchmark": "bestofn",
        "source": source,
        "problems": len(problems),
        "samples_per_problem": n_max,
        "trials": spec.trials,
        "ns": ns,
        "accuracy": {str(n): {m: sum(v) / len(v) for m, v in per[n].items()} for n in ns},
        "skipped_ungradable": skipped,
        "paired_vs_majority": paired_against(per),
        "within_problem_auc": {a: within_problem_auc(problems, a) for a in names},
    }
    if ctx.compute:
        from prmkit.score.scoring import merge_compute

        metrics["compute"] = merge_compute(ctx.compute)
    return metrics


def render(out_dir: Path, metrics: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """report.md's text, the plot (bestofn.png), the terminal table, and the summary rows, from the metrics."""
    ns, table, paired = metrics["ns"], metrics["accuracy"], metrics["paired_vs_majority"]
    auc, problems = metrics["within_problem_auc"], metrics["problems"]
    methods = list(table[str(ns[0])])
    prm_methods = [m for m in methods if m.startswith("prm_")]
    header = ["N", *methods]
    rows = [[str(n), *[table[str(n)][m] for m in methods]] for n in ns]
    line_plot(
        out_dir / "bestofn.png",
        ns,
        {m: [table[str(n)][m] for n in ns] for m in methods},
        f"Best-of-N ({problems} problems)",
        "N (samples per problem)",
        "accuracy (%)",
    )
    report = "\n".join(
        [
            "# Best-of-N",
            "",
            f"Source: {metrics['source']}; {problems} problems, {metrics['samples_per_problem']} samples each; for "
            "each N below the",
            f"full draw, {metrics['trials']} seeded random subsets per problem are averaged (one draw, subsampled).",
            "",
            "Accuracy in percent. prm_<agg>: the sample with the highest aggregate step score; "
            "prm_weighted_vote: answers",
            "weighted by that aggregate; majority_vote: plain vote; pass@N: any sample correct (oracle).",
            "",
            markdown_table(header, rows, percent=True),
            "",
            "![accuracy against N](bestofn.png)",
            "",
            "Paired against majority vote (same problems, same subsets): difference in points, 95% interval.",
            "",
            markdown_table(
                ["N", *prm_methods],
                [[str(n), *[_interval(paired[str(n)][m]) for m in prm_methods]] for n in ns if str(n) in paired],
            ),
            "",
            "Within-problem AUC (a right sample scored above a wrong one of the same problem): "
            + ", ".join(f"{a} {_auc(auc[a])}" for a in sorted(auc))
            + ".",
        ]
    )
    rich_table("Best-of-N accuracy (%)", header, rows, percent=True)
    top = ns[-1]
    out_rows: dict[str, Any] = {f"{m} @{top}": table[str(top)][m] for m in methods}
    out_rows["problems"] = problems
    return report, out_rows


def _interval(p: dict[str, float]) -> str:
    return f"{100 * p['diff']:+.1f} [{100 * p['ci95_low']:+.1f}, {100 * p['ci95_high']:+.1f}]"


def _auc(a: dict[str, Any]) -> str:
    return "n/a" if a["auc"] is None else f"{a['auc']:.3f} ({a['problems']} problems)"
