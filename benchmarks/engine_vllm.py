"""Sampling throughput of the vllm engine against the hf engine, on the workload of benchmarks/engine.py.

    python benchmarks/engine_vllm.py [--sizes world,bigger] [--repeats 3] [--threads 1]

Both engines sample exactly `new_tokens` per sequence (EOS ignored, no stop strings) for every prompt and
sample in ONE generate call, so tokens/s compare like for like. Each engine is started once per model size
and warmed up; vLLM's start-up (10-30 s on CPU) is reported apart and not counted in tokens/s.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine import SIZES, prompts_for  # noqa: E402  (the foundation benchmark's workload)

from prmkit.engines import SamplingParams, make_sampler  # noqa: E402
from prmkit.models.tiny import count_parameters, make_tiny_model  # noqa: E402

ENGINE_KWARGS = {"hf": {"device": "cpu"}, "vllm": {"device": "auto"}}


def measure(
    engine: str, model_dir: Path, prompts: list[str], params: SamplingParams, repeats: int, max_batch_size: int
) -> dict[str, float]:
    """Start-up seconds and the best tokens/s of `repeats` seeded batched calls."""
    t0 = time.perf_counter()
    sampler = make_sampler(engine, model=str(model_dir), max_batch_size=max_batch_size, **ENGINE_KWARGS[engine])
    startup = time.perf_counter() - t0
    try:
        sampler.generate(prompts[:2], params)  # warm-up
        best = 0.0
        for _ in range(repeats):
            start = time.perf_counter()
            out = sampler.generate(prompts, params)
            seconds = time.perf_counter() - start
            tokens = sum(c.num_tokens for row in out for c in row)
            expected = len(prompts) * params.n * params.max_new_tokens
            if tokens != expected:
                raise SystemExit(f"{engine}: generated {tokens} tokens, expected exactly {expected}")
            best = max(best, tokens / seconds)
    finally:
        sampler.close()
    return {"startup_s": startup, "tokens_per_s": best, "tokens": float(tokens)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="world,bigger", help=f"comma-separated; known: {', '.join(SIZES)}")
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--max-batch-size", type=int, default=256, help="sequences per step (vLLM: max_num_seqs)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads for hf (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    console = Console(width=max(Console().width, 110))
    console.print(
        f"{args.prompts} prompts x {args.samples} samples x {args.new_tokens} new tokens, one batched call, "
        f"best of {args.repeats}; hf torch threads {torch.get_num_threads()}"
    )
    params = SamplingParams(n=args.samples, temperature=1.0, max_new_tokens=args.new_tokens, ignore_eos=True, seed=0)
    prompts = prompts_for(args.prompts)
    with tempfile.TemporaryDirectory() as tmp:
        sizes = args.sizes.split(",")
        models = {size: make_tiny_model(Path(tmp) / size, "qwen2", seed=0, **SIZES[size]) for size in sizes}
        # hf first for every size: an in-process vLLM engine re-binds OpenMP threads, which would slow hf after it.
        results = {
            (e, size): measure(e, models[size], prompts, params, args.repeats, args.max_batch_size)
            for e in ("hf", "vllm")
            for size in models
        }
        for size, model_dir in models.items():
            model = make_sampler("hf", model=str(model_dir), device="cpu").model
            table = Table(
                title=f"{size} model: {count_parameters(model) / 1e6:.2f}M parameters, {SIZES[size]}",
                title_justify="left",
            )
            for col in ("engine", "start-up s", "tokens", "tokens/s", "vs hf"):
                table.add_column(col, justify="left" if col == "engine" else "right")
            for engine in ("hf", "vllm"):
                r = results[(engine, size)]
                ratio = r["tokens_per_s"] / results[("hf", size)]["tokens_per_s"]
                table.add_row(
                    engine, f"{r['startup_s']:.1f}", f"{r['tokens']:.0f}", f"{r['tokens_per_s']:,.0f}", f"{ratio:.2f}x"
                )
            console.print(table)


if __name__ == "__main__":
    main()
