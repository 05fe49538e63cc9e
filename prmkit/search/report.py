"""Accuracy against compute, from the search results on disk: metrics.json, report.md and a PNG plot.

Everything is recomputed from `results.jsonl`, so a resumed run, or shards merged afterwards, report the
whole run. Per method and budget: accuracy, oracle (some finished candidate was right), and per problem the
generated tokens, PRM-scored tokens and wall time (a chunk's time split evenly over its problems; methods
reading the shared draw are charged their share of it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from prmkit.data.shards import read_jsonl


def read_results(path: Path) -> list[dict[str, Any]]:
    return read_jsonl(path, missing_ok=True)


def summarize(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """metrics.json's content: per method and budget, and totals."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        m = row["meta"]
        groups[(m["method"], int(m["budget"]))].append(row)
    methods: dict[str, dict[str, Any]] = {}
    totals = {"generated_tokens": 0, "scored_tokens": 0, "wall_s": 0.0, "records": 0}
    for (label, budget), rs in sorted(groups.items()):
        n = len(rs)
        graded = [r for r in rs if r["correct"] is not None]
        gen = sum(r["meta"]["generated_tokens"] for r in rs)
        sco = sum(r["meta"]["scored_tokens"] for r in rs)
        wall = sum(r["meta"]["wall_s"] for r in rs)
        entry = methods.setdefault(label, {"method": rs[0]["meta"]["method_name"], "budgets": {}})
        entry["budgets"][str(budget)] = {
            "problems": n,
            "accuracy": round(sum(bool(r["correct"]) for r in graded) / len(graded), 4) if graded else None,
            "oracle": round(sum(bool(r["meta"].get("oracle")) for r in graded) / len(graded), 4) if graded else None,
            "generated_tokens_per_problem": round(gen / n, 2),
            "scored_tokens_per_problem": round(sco / n, 2),
            "wall_s_per_problem": round(wall / n, 4),
            "no_answer": sum(r["answer"] is None for r in rs),
        }
        totals["generated_tokens"] += gen
        totals["scored_tokens"] += sco
        totals["wall_s"] += wall
        totals["records"] += n
    totals["wall_s"] = round(totals["wall_s"], 3)
    return {"methods": methods, "totals": totals}


def markdown_table(metrics: dict[str, Any]) -> str:
    """Accuracy against generated tokens, one row per (method, N)."""
    lines = [
        "| method | N | accuracy | oracle | generated tokens / problem | PRM-scored tokens / problem "
        "| wall s / problem |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, entry in metrics["methods"].items():
        for budget, b in sorted(entry["budgets"].items(), key=lambda kv: int(kv[0])):
            acc = "n/a" if b["accuracy"] is None else f"{b['accuracy']:.3f}"
            orc = "n/a" if b["oracle"] is None else f"{b['oracle']:.3f}"
            lines.append(
                f"| {label} | {budget} | {acc} | {orc} | {b['generated_tokens_per_problem']:.1f} | "
                f"{b['scored_tokens_per_problem']:.1f} | {b['wall_s_per_problem']:.3f} |"
            )
    return "\n".join(lines) + "\n"


def plot(metrics: dict[str, Any], path: Path) -> Path | None:
    """Accuracy (%) against generated tokens per problem (log scale), one line per method, points labelled N;
    plain majority vote (no PRM) dashed in black, so every PRM-guided method is read against it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    drawn = False
    for label, entry in metrics["methods"].items():
        pts = sorted(
            (b["generated_tokens_per_problem"], 100 * b["accuracy"], int(n))
            for n, b in entry["budgets"].items()
            if b["accuracy"] is not None
        )
        if not pts:
            continue
        xs, ys, ns = zip(*pts)
        style: dict[str, Any] = (
            {"linestyle": "--", "color": "black", "zorder": 3} if entry.get("method") == "majority" else {}
        )
        ax.plot(xs, ys, marker="o", label=label, **style)
        for x, y, n in pts:
            ax.annotate(f"N={n}", (x, y), textcoords="offset points", xytext=(3, 3), fontsize=7)
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xscale("log", base=2)
    ax.set_xlabel("generated tokens per problem")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("PRM-guided search: accuracy against generated tokens")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_report(out_dir: Path, metrics: dict[str, Any], title: str = "prmkit search") -> Path:
    """report.md (table and plot) beside metrics.json."""
    png = plot(metrics, out_dir / "accuracy_vs_tokens.png")
    t = metrics["totals"]
    parts = [
        f"# {title}\n",
        f"{t['records']} results; {t['generated_tokens']} generated tokens, {t['scored_tokens']} PRM-scored "
        f"tokens, {t['wall_s']:.1f} s in all.\n",
        "## Accuracy against generated tokens\n",
        markdown_table(metrics),
    ]
    if png is not None:
        parts.append(f"\n![accuracy against generated tokens]({png.name})\n")
    path = out_dir / "report.md"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
