"""Step scoring throughput: one forward pass per solution (prmkit's scorer) against one pass per prefix.

    python benchmarks/score.py [--solutions 64] [--steps 8] [--hidden 64] [--threads 2]
    python benchmarks/score.py --processbench tests/fixtures/bench/processbench/math.json --engines hf,vllm

A prefix-by-prefix scorer (what a naive step-by-step loop does) runs the model on steps[:1], steps[:2], ...
and reads the last score each time; prmkit renders the whole solution once and reads every step's score
from that one pass. Both go through the same batched engine (same batch size, length-sorted batches), so
the ratio is the saving of one-pass scoring alone. The scores are checked to agree. `--processbench FILE`
scores real ProcessBench solutions (their problems and steps, at their lengths) instead of the synthetic ones;
`--engines hf,vllm` adds vLLM's pooling runner on the same PRM, solutions and batches, side by side.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from prmkit.engines import make_scorer
from prmkit.models.tiny import make_tiny_model


def tiny_prm(folder: Path, hidden: int) -> Path:
    """A random prmkit-format PRM (token classifier) with its prmkit_prm.json."""
    from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer

    lm = make_tiny_model(
        folder / "lm", hidden_size=hidden, num_layers=2, num_heads=max(2, hidden // 32), max_position_embeddings=8192
    )  # ProcessBench's longest solutions run to a few thousand tokens of this character-level tokenizer
    config = AutoConfig.from_pretrained(lm)
    config.num_labels = 2
    torch.manual_seed(0)
    AutoModelForTokenClassification.from_config(config).save_pretrained(folder / "prm")
    AutoTokenizer.from_pretrained(lm).save_pretrained(folder / "prm")
    meta = {
        "format": "prmkit",
        "objective": "prm",
        "head": "token_classification",
        "step_separator": "\n",
        "good_token": "+",
        "bad_token": "-",
        "chat_template": False,
    }
    (folder / "prm" / "prmkit_prm.json").write_text(json.dumps(meta))
    return folder / "prm"


def solutions(n: int, steps: int, seed: int = 0) -> list[tuple[str, list[str]]]:
    """Arithmetic-world-like solutions: a short problem and `steps` steps of 12-20 characters."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        value = rng.randint(1, 50)
        problem = (
            f"Start at {value}." + "".join(f" Add {rng.randint(1, 50)}." for _ in range(steps - 1)) + " What is it?"
        )
        chain = []
        for _ in range(steps - 1):
            b = rng.randint(1, 50)
            chain.append(f"{value} + {b} = {value + b}")
            value += b
        chain.append(f"The answer is {value}.")
        out.append((problem, chain))
    return out


def processbench_items(path: str, limit: int) -> list[tuple[str, list[str]]]:
    """Problems and steps of a ProcessBench file (its own layout), the first `limit` with at least one step."""
    from prmkit.data import load_records

    return [(r.problem, list(r.steps)) for r in load_records(path, layout="processbench") if r.steps][:limit]


def measure(engine: str, prm: Path, items: list, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Best wall time of one pass per solution and of one pass per prefix, tokens run, score agreement."""
    kwargs = {"device": "cpu"} if engine == "hf" else {"device": "auto"}
    scorer = make_scorer(engine, model=str(prm), max_batch_size=args.batch, max_length=args.max_length, **kwargs)
    prefixes = [(p, s[: k + 1]) for p, s in items for k in range(len(s))]
    try:
        scorer.score(items[:4])  # warm-up
        best = {"one pass per solution": float("inf"), "one pass per prefix": float("inf")}
        tokens = {}
        for _ in range(args.repeats):
            for name, batch in (("one pass per solution", items), ("one pass per prefix", prefixes)):
                before = scorer.stats.scored_tokens
                t0 = time.perf_counter()
                result = scorer.score(batch)
                best[name] = min(best[name], time.perf_counter() - t0)
                tokens[name] = scorer.stats.scored_tokens - before
                if name == "one pass per solution":
                    one_pass = [list(r.scores) for r in result]
                else:
                    last = iter([r.scores[-1] if r.scores else None for r in result])
                    per_prefix = [[next(last) for _ in s] for _, s in items]
    finally:
        scorer.close()
    agree = max(abs(a - b) for xs, ys in zip(one_pass, per_prefix) for a, b in zip(xs, ys) if b is not None)
    return {name: {"wall": wall, "tokens": tokens[name], "agree": agree} for name, wall in best.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--solutions", type=int, default=64)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--processbench", default=None, help="a ProcessBench .json file: score its real solutions")
    ap.add_argument("--max-length", type=int, default=None, help="the PRM's length cap (default: the model's)")
    ap.add_argument("--engines", default="hf", help="comma-separated: hf, vllm")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.processbench:
        items = processbench_items(args.processbench, args.solutions)
        what = f"{len(items)} ProcessBench solutions ({args.processbench})"
    else:
        items = solutions(args.solutions, args.steps)
        what = f"{args.solutions} synthetic solutions x {args.steps} steps"
    steps = sum(len(s) for _, s in items)
    with tempfile.TemporaryDirectory() as tmp:
        prm = tiny_prm(Path(tmp), args.hidden)
        results = {e: measure(e, prm, items, args) for e in args.engines.split(",")}
    table = Table(
        title=f"Step scoring: {what}, {steps} steps, hidden {args.hidden}, {args.threads} torch threads "
        f"(best of {args.repeats})",
        title_justify="left",
    )
    for col in ("engine", "method", "tokens run", "wall s", "steps scored/s", "vs hf one pass"):
        table.add_column(col, justify="right" if col not in ("method", "engine") else "left")
    base = results[next(iter(results))]["one pass per solution"]["wall"]
    for engine, rows in results.items():
        for name, r in rows.items():
            speed = f"{base / r['wall']:.2f}x"
            table.add_row(engine, name, str(r["tokens"]), f"{r['wall']:.3f}", f"{steps / r['wall']:.0f}", speed)
    console = Console(width=max(Console().width, 120))
    console.print(table)
    for engine, rows in results.items():
        ratio = rows["one pass per prefix"]["wall"] / rows["one pass per solution"]["wall"]
        agree = rows["one pass per solution"]["agree"]
        console.print(f"{engine}: one pass per solution {ratio:.2f}x faster than per prefix (max diff {agree:.1e})")


if __name__ == "__main__":
    main()
