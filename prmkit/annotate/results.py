"""What an annotate run writes about each solution (its labelled record) and about the whole run (cost and
the label audit over everything on disk), shared by a run, a resumed run and a merge."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prmkit.annotate.audit import audit
from prmkit.annotate.recipe import AnnotateRecipe
from prmkit.annotate.rollouts import RolloutCost
from prmkit.annotate.selection import labeller
from prmkit.data.shards import read_records
from prmkit.records import Record


def labelled_record(recipe: AnnotateRecipe, record: Record, ann: Any) -> Record:
    out = Record.from_dict(record.to_dict())
    use_soft = recipe.method.label_type == "soft" and ann.soft is not None
    out.labels = ann.soft if use_soft else ann.hard
    out.meta["annotation"] = {
        "method": recipe.method.name,
        "first_error": ann.first_error,
        "hard": ann.hard,
        "soft": ann.soft,
        "rollouts": ann.cost.rollouts,
        "generated_tokens": ann.cost.generated_tokens,
        **({"witnesses": ann.cost.witnesses} if ann.cost.witnesses else {}),
        **ann.details,
    }
    return out


def audit_rows(metrics: dict[str, Any]) -> dict[str, str]:
    rows = {}
    for key, value in (metrics.get("audit") or {}).items():
        if isinstance(value, dict):
            rows[f"audit {key}: step acc / first-error F1"] = (
                f"{fmt_metric(value['step_accuracy'])} / {fmt_metric(value['first_error_f1'])}"
            )
    return rows


def fmt_metric(value: float | None) -> str:
    """A metric for the summary table; None (an empty group, e.g. no correct solution) shows as n/a."""
    return "n/a" if value is None else f"{value:.3f}"


def summarize(out_dir: Path, recipe: AnnotateRecipe) -> dict[str, Any]:
    """Cost and audit over everything on disk (a resumed run reports the whole run, not only its tail)."""
    kept = read_records(out_dir / "labels.jsonl", missing_ok=True)
    rejected = read_records(out_dir / "rejected.jsonl", missing_ok=True)
    every = kept + rejected
    cost = RolloutCost()
    for r in every:
        a = r.meta["annotation"]
        cost.add(RolloutCost(a["rollouts"], a["generated_tokens"], a.get("witnesses", 0)))
    metrics: dict[str, Any] = {
        "method": recipe.method.name,
        "labelled": len(kept),
        "rejected": len(rejected),
        "cost": {
            "rollouts": cost.rollouts,
            "generated_tokens": cost.generated_tokens,
            "generated_tokens_per_solution": round(cost.generated_tokens / len(every), 2) if every else 0.0,
            "rollouts_per_solution": round(cost.rollouts / len(every), 2) if every else 0.0,
            "witnesses": cost.witnesses,
        },
    }
    audits: dict[str, Any] = {}
    kept_audit = audit([(r, r.labels) for r in kept if r.labels is not None])
    if kept_audit:
        audits["labels"] = kept_audit
    if labeller(recipe).soft_labels:
        with_soft = [r for r in kept if r.meta["annotation"].get("soft") is not None]  # early-stopped: no soft
        soft = audit([(r, [1.0 if x >= 0.5 else 0.0 for x in r.meta["annotation"]["soft"]]) for r in with_soft])
        hard = audit([(r, r.meta["annotation"]["hard"]) for r in kept])
        if soft:
            audits[f"{recipe.method.name}_soft@0.5"] = soft
        if hard:
            audits[f"{recipe.method.name}_hard"] = hard
    if audits:
        metrics["audit"] = audits
    return metrics
