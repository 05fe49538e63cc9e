"""What step-level search costs against best-of-N, with the PRM's prefix cache on and off, side by side.

Runs `prmkit search` on a trained chain (the quickstart policy and PRM of a `make demo` run) with best-of-N,
beam search and DVTS at one budget N, once with `prm.prefix_cache_mb` 0 (every candidate re-scored from its
first token each round) and once with the cache (a candidate runs only the tokens after the prefix its parent
was scored with). Prints per problem: generated tokens, PRM-scored tokens (what the PRM computed, cache hits
not counted) and wall time, the ratios of beam and DVTS to best-of-N (targets: scored tokens within 1.3x, beam's
wall within 1.5x), and whether the cache changed any chosen answer (it must not: scores equal within 1e-5).
torch runs one thread for the policy and the PRM (fixed, so the timings compare).

    python benchmarks/search_cost.py --run runs/quickstart-0 [--n 8] [--problems 50] [--repeats 3] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PRMKIT_QUIET", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from prmkit.commands import COMMANDS, load_builtin_commands  # noqa: E402
from prmkit.recipe import load_recipe  # noqa: E402

METHODS = {
    "best_of_n": {"aggregate": "min"},
    "beam": {"beam_width": 4, "aggregate": "last"},
    "dvts": {"beam_width": 4, "aggregate": "last"},
}


def search(run: Path, out: Path, n: int, problems: int, cache_mb: int, seed: int) -> dict[str, dict[str, float]]:
    """One `prmkit search` run; per method: tokens and wall per problem, accuracy, and the chosen answers."""
    command = COMMANDS.get("search")
    recipe = load_recipe(
        command.recipe,
        str(ROOT / "recipes/quickstart/search.yaml"),
        [
            f"vars.run={run}",
            f"seed={seed}",
            f"output_dir={out}",
            f"data.limit={problems}",
            f"budgets=[{n}]",
            f"prm.prefix_cache_mb={cache_mb}",
            "prm.threads=1",
            "policy.threads=1",
        ],
    )
    recipe = command.recipe.model_validate({**recipe.model_dump(), "methods": METHODS})
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    command.run(recipe, "bench")
    total = time.perf_counter() - start
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    out_rows: dict[str, dict[str, float]] = {}
    for method in METHODS:
        mine = [r for r in rows if r["meta"]["method"] == method]
        k = len(mine)
        out_rows[method] = {
            "generated": sum(r["meta"]["generated_tokens"] for r in mine) / k,
            "scored": sum(r["meta"]["scored_tokens"] for r in mine) / k,
            "wall": sum(r["meta"]["wall_s"] for r in mine) / k,
            "accuracy": sum(bool(r["correct"]) for r in mine) / k,
            "answers": [r["answer"] for r in mine],
        }
    out_rows["_run"] = {"wall": total}
    return out_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default="runs/quickstart-0", help="a `make demo` run folder (policy, prm, world)")
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--problems", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/bench_search_cost")
    parser.add_argument("--repeats", type=int, default=3, help="runs per cache setting; each method's best wall")
    args = parser.parse_args()
    load_builtin_commands()
    run = Path(args.run).resolve()
    if not (run / "prm" / "final").is_dir():
        sys.exit(f"{run}: no prm/final; run `make demo` (or `make demo SEED=s RUN=...`) first")
    out = Path(args.out)
    results = {}
    for label, mb in (("off", 0), ("on", 256)):
        runs = [search(run, out / label, args.n, args.problems, mb, args.seed) for _ in range(args.repeats)]
        results[label] = runs[0]
        for method in METHODS:  # the same outputs every run (seeded); the wall is each method's best
            results[label][method]["wall"] = min(r[method]["wall"] for r in runs)
    print(
        f"search on {args.problems} test problems of {run.name}, N = {args.n}, seed {args.seed}, torch 1 thread, "
        f"wall: best of {args.repeats} runs"
    )
    print("| method | prefix cache | accuracy | generated tok / problem | PRM-scored tok / problem | wall s / prob. |")
    print("|---|---|---|---|---|---|")
    for label, rows in results.items():
        for method in METHODS:
            r = rows[method]
            print(
                f"| {method} | {label} | {r['accuracy']:.1%} | {r['generated']:.0f} | {r['scored']:.0f} "
                f"| {r['wall']:.3f} |"
            )
    for label, rows in results.items():
        bon = rows["best_of_n"]
        for method in ("beam", "dvts"):
            r = rows[method]
            print(
                f"cache {label}: {method} / best_of_n: PRM-scored tokens {r['scored'] / bon['scored']:.2f}x "
                f"(target <= 1.3x), wall {r['wall'] / bon['wall']:.2f}x (target <= 1.5x for beam), generated tokens "
                f"{r['generated'] / bon['generated']:.2f}x"
            )
    same = all(results["on"][m]["answers"] == results["off"][m]["answers"] for m in METHODS)
    print(f"chosen answers with the cache on and off: {'identical' if same else 'DIFFERENT'}")
    for method in ("beam", "dvts"):
        off, on = results["off"][method], results["on"][method]
        print(
            f"{method}: the cache cuts PRM-scored tokens {off['scored'] / on['scored']:.2f}x and wall "
            f"{off['wall'] / on['wall']:.2f}x"
        )


if __name__ == "__main__":
    main()
