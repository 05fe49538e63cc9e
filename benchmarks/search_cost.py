"""What step-level search costs against best-of-N, with the prefix caches off and on, side by side.

Runs `prmkit search` on a trained chain (the quickstart policy and PRM of a `make demo` run) with best-of-N,
beam search and DVTS at one budget N, under three settings: `none` (`prm.prefix_cache_mb` and
`policy.prefix_cache_mb` 0: every candidate re-scored from its first token and its prompt prefilled whole each
round), `prm` (the PRM's cache only: a candidate runs only the tokens after the prefix its parent was scored
with) and `both` (search's default: the policy's cache too, so a prompt that extends last round's prefills only
its new tokens). In every setting identical candidates of one call are scored once and identical prompts
prefilled once. Prints per problem: generated tokens, PRM-scored tokens (what the PRM computed: cache hits and
repeats not counted) and wall time; the share of scored candidates that repeated another and of prompt tokens
read from the policy's cache; the ratios of beam and DVTS to best-of-N (targets: scored tokens within 1.3x,
beam's wall within 1.5x); and whether the caches changed any chosen answer (they must not). torch runs one
thread for the policy and the PRM (fixed, so the timings compare). `--temperature` overrides the recipe's: a
hotter policy repeats itself less. `--recipe` and `--set` run another chain, e.g. real text on a real model (the
`make real` chain: SmolLM2-135M-Instruct on GSM8K, its PRM, the hf engine):

    python benchmarks/search_cost.py --run runs/quickstart-0 [--n 8] [--problems 50] [--repeats 3]
        [--temperature T] [--methods best_of_n,beam,dvts] [--settings none,prm,both] [--out DIR]
    python benchmarks/search_cost.py --recipe recipes/smollm2/search.yaml --run runs/smollm2 --n 4 --beam-width 2 \
        --problems 8 --repeats 1 --methods best_of_n,beam --settings none,both \
        --set vars.engine=hf --set vars.model=PATH/SmolLM2-135M-Instruct.Q4_1.gguf --set vars.data=../shared/data
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PRMKIT_QUIET", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from prmkit.commands import COMMANDS, load_builtin_commands  # noqa: E402
from prmkit.recipe import load_recipe  # noqa: E402

SETTINGS = {"none": (0, 0), "prm": (0, 256), "both": (256, 256)}
"""Label -> (policy.prefix_cache_mb, prm.prefix_cache_mb)."""


def method_specs(beam_width: int) -> dict[str, dict[str, object]]:
    return {
        "best_of_n": {"aggregate": "min"},
        "beam": {"beam_width": beam_width, "aggregate": "last"},
        "dvts": {"beam_width": beam_width, "aggregate": "last"},
    }


def search(args: argparse.Namespace, out: Path, caches: tuple[int, int], method: str) -> dict[str, Any]:
    """One `prmkit search` run of one method (its own engines' counters): tokens and wall per problem, accuracy,
    the chosen answers, the share of repeated candidates and of prompt tokens read from the policy's cache."""
    command = COMMANDS.get("search")
    recipe = load_recipe(
        command.recipe,
        str(args.recipe),
        [
            f"vars.run={Path(args.run).resolve()}",
            f"seed={args.seed}",
            f"output_dir={out}",
            f"data.limit={args.problems}",
            f"budgets=[{args.n}]",
            f"policy.prefix_cache_mb={caches[0]}",
            f"prm.prefix_cache_mb={caches[1]}",
            "prm.threads=1",
            "policy.threads=1",
            *([f"sampling.temperature={args.temperature}"] if args.temperature is not None else []),
            *args.set,
        ],
    )
    spec = method_specs(args.beam_width)[method]
    recipe = command.recipe.model_validate({**recipe.model_dump(), "methods": {method: spec}})
    shutil.rmtree(out, ignore_errors=True)
    command.run(recipe, "bench")
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    engines = json.loads((out / "metrics.json").read_text())["compute_this_run"]["engines"]
    policy, prm = engines["policy"], engines["prm"]
    k = len(rows)
    return {
        "generated": sum(r["meta"]["generated_tokens"] for r in rows) / k,
        "scored": sum(r["meta"]["scored_tokens"] for r in rows) / k,
        "wall": sum(r["meta"]["wall_s"] for r in rows) / k,
        "accuracy": sum(bool(r["correct"]) for r in rows) / k,
        "answers": [r["answer"] for r in rows],
        "repeated": prm["duplicate_sequences"] / max(prm["duplicate_sequences"] + prm["sequences"], 1),
        "cached_prompt": policy["cached_prompt_tokens"] / max(policy["prompt_tokens"], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default="runs/quickstart-0", help="a `make demo` run folder (policy, prm, world)")
    parser.add_argument("--recipe", default=str(ROOT / "recipes/quickstart/search.yaml"))
    parser.add_argument("--set", action="append", default=[], help="a recipe override KEY=VALUE (repeatable)")
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--beam-width", type=int, default=4)
    parser.add_argument("--problems", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/bench_search_cost")
    parser.add_argument("--repeats", type=int, default=3, help="runs per cache setting; each method's best wall")
    parser.add_argument("--temperature", type=float, default=None, help="the policy's (default: the recipe's)")
    parser.add_argument("--methods", default="best_of_n,beam,dvts", help="best_of_n first: the ratios' base")
    parser.add_argument("--settings", default=",".join(SETTINGS), help=f"of {', '.join(SETTINGS)}")
    args = parser.parse_args()
    load_builtin_commands()
    run = Path(args.run).resolve()
    if not (run / "prm" / "final").is_dir():
        sys.exit(f"{run}: no prm/final; run `make demo` (or `make demo SEED=s RUN=...`; `make real`) first")
    methods = args.methods.split(",")
    settings = args.settings.split(",")
    if methods[0] != "best_of_n" or any(m not in method_specs(1) for m in methods):
        sys.exit(f"--methods: best_of_n first, then any of beam, dvts (got {args.methods})")
    if any(s not in SETTINGS for s in settings):
        sys.exit(f"--settings: any of {', '.join(SETTINGS)} (got {args.settings})")
    out = Path(args.out)
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for label in settings:
        results[label] = {}
        for method in methods:
            runs = [search(args, out / label / method, SETTINGS[label], method) for _ in range(args.repeats)]
            # The same outputs every run (seeded); the wall is the best of the runs.
            results[label][method] = {**runs[0], "wall": min(float(r["wall"]) for r in runs)}
    print(
        f"search on {args.problems} problems of {run.name} ({Path(args.recipe).name}), N = {args.n}, beam width "
        f"{args.beam_width}, seed {args.seed}, temperature "
        f"{args.temperature if args.temperature is not None else 'of the recipe'}, torch 1 thread, wall: best of "
        f"{args.repeats} runs"
    )
    print(
        "| method | prefix caches | accuracy | generated tok / problem | PRM-scored tok / problem | wall s / prob. "
        "| repeated candidates | cached prompt tokens |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for label, rows in results.items():
        for method, r in rows.items():
            print(
                f"| {method} | {label} | {r['accuracy']:.1%} | {r['generated']:.0f} | {r['scored']:.0f} "
                f"| {r['wall']:.3f} | {r['repeated']:.0%} | {r['cached_prompt']:.0%} |"
            )
    for label, rows in results.items():
        bon = rows["best_of_n"]
        for method in methods[1:]:
            r = rows[method]
            print(
                f"caches {label}: {method} / best_of_n: PRM-scored tokens {r['scored'] / bon['scored']:.2f}x "
                f"(target <= 1.3x), wall {r['wall'] / bon['wall']:.2f}x (target <= 1.5x for beam), generated tokens "
                f"{r['generated'] / bon['generated']:.2f}x"
            )
    first = results[settings[0]]
    same = all(results[label][m]["answers"] == first[m]["answers"] for label in settings for m in methods)
    print(f"chosen answers in the settings {', '.join(settings)}: {'identical' if same else 'DIFFERENT'}")
    for method in methods[1:]:
        walls = ", ".join(f"{label} {results[label][method]['wall']:.3f} s" for label in settings)
        print(f"{method}: wall per problem by setting: {walls}")


if __name__ == "__main__":
    main()
