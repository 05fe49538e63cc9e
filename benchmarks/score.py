"""Step scoring throughput: one forward pass per solution (prmkit's scorer) against one pass per prefix.

    python benchmarks/score.py [--solutions 64] [--steps 8] [--hidden 64] [--threads 2]

A prefix-by-prefix scorer (what a naive step-by-step loop does) runs the model on steps[:1], steps[:2], ...
and reads the last score each time; prmkit renders the whole solution once and reads every step's score
from that one pass. Both go through the same batched engine (same batch size, length-sorted batches), so
the ratio is the saving of one-pass scoring alone. The scores are checked to agree.
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

    lm = make_tiny_model(folder / "lm", hidden_size=hidden, num_layers=2, num_heads=max(2, hidden // 32))
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--solutions", type=int, default=64)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    items = solutions(args.solutions, args.steps)
    with tempfile.TemporaryDirectory() as tmp:
        scorer = make_scorer("hf", model=str(tiny_prm(Path(tmp), args.hidden)), device="cpu", max_batch_size=args.batch)
        prefixes = [(p, s[: k + 1]) for p, s in items for k in range(len(s))]
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
                    one_pass = [s for r in result for s in r.scores]
                else:
                    per_prefix = [r.scores[-1] for r in result]
        agree = max(abs(a - b) for a, b in zip(one_pass, per_prefix))
    steps = len(prefixes)
    table = Table(
        title=f"Step scoring: {args.solutions} solutions x {args.steps} steps, hidden {args.hidden}, "
        f"{args.threads} threads (best of {args.repeats})",
        title_justify="left",
    )
    for col in ("method", "tokens run", "wall s", "steps scored/s"):
        table.add_column(col, justify="right" if col != "method" else "left")
    for name, wall in best.items():
        table.add_row(name, str(tokens[name]), f"{wall:.3f}", f"{steps / wall:.0f}")
    console = Console()
    console.print(table)
    ratio = best["one pass per prefix"] / best["one pass per solution"]
    console.print(f"speed-up of one-pass scoring: {ratio:.2f}x (max score difference {agree:.1e})")


if __name__ == "__main__":
    main()
