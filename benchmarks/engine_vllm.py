"""Sampling throughput of the vllm engine against the hf engine, on the workload of benchmarks/engine.py.

    python benchmarks/engine_vllm.py [--sizes world,bigger] [--repeats 3] [--threads 1]

Both engines sample exactly `new_tokens` per sequence (EOS ignored, no stop strings) for every prompt and
sample in ONE generate call, so tokens/s compare like for like. Each engine is started once per model size
and warmed up; vLLM's start-up (10-30 s on CPU) is reported apart and not counted in tokens/s.

The `raw vLLM` row calls `vllm.LLM.generate` itself on the same engine prmkit's sampler built (so every engine
setting is the same: dtype, eager mode, max_num_seqs, prefix caching, seeds per request), with the same token
ids, sampling parameters and seeds, alternating with prmkit's call: the gap is prmkit's own overhead (prompt
encoding, parameters, turning outputs into completions). Target: prmkit >= 95% of raw. `--scorer` does the
same for the PRM: prmkit's vLLM scorer against raw `LLM.encode(..., pooling_task="token_classify")` on a
token-classification PRM, at ProcessBench-like lengths (`--scorer-steps` steps of about 20 tokens).
`--model PATH` (a folder or .gguf) runs a real model instead of the tiny sizes, e.g. SmolLM2-135M.
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


def warm_up(params: SamplingParams) -> SamplingParams:
    """The parameters for a warm-up call on the first two prompts (their two seeds)."""
    from dataclasses import replace

    return replace(params, prompt_seeds=params.prompt_seeds[:2]) if params.prompt_seeds else params


def measure(
    engine: str, model_dir: Path, prompts: list[str], params: SamplingParams, repeats: int, max_batch_size: int
) -> dict[str, float]:
    """Start-up seconds and the best tokens/s of `repeats` seeded batched calls."""
    t0 = time.perf_counter()
    sampler = make_sampler(engine, model=str(model_dir), max_batch_size=max_batch_size, **ENGINE_KWARGS[engine])
    startup = time.perf_counter() - t0
    try:
        sampler.generate(prompts[:2], warm_up(params))
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


def measure_vllm_and_raw(
    model_dir: Path | str, prompts: list[str], params: SamplingParams, repeats: int, max_batch_size: int
) -> tuple[dict[str, float], dict[str, float]]:
    """prmkit's vLLM sampler and raw LLM.generate on that same engine, alternating; best tokens/s of each."""
    from vllm import SamplingParams as VP

    t0 = time.perf_counter()
    sampler = make_sampler("vllm", model=str(model_dir), max_batch_size=max_batch_size, device="auto")
    startup = time.perf_counter() - t0
    ids = sampler._encode(prompts)
    raw_params = [
        VP(
            n=params.n,
            temperature=params.temperature,
            top_p=params.top_p,
            seed=seed,
            max_tokens=params.max_new_tokens,
            ignore_eos=True,
            skip_special_tokens=True,
        )
        for seed in params.seeds_for(len(prompts), 0)
    ]
    expected = len(prompts) * params.n * params.max_new_tokens
    best = {"prmkit": 0.0, "raw": 0.0}
    try:
        sampler.generate(prompts[:2], warm_up(params))
        for _ in range(repeats):
            start = time.perf_counter()
            out = sampler.generate(prompts, params)
            seconds = time.perf_counter() - start
            assert sum(c.num_tokens for row in out for c in row) == expected
            best["prmkit"] = max(best["prmkit"], expected / seconds)
            start = time.perf_counter()
            raw = sampler.llm.generate([{"prompt_token_ids": x} for x in ids], raw_params, use_tqdm=False)
            seconds = time.perf_counter() - start
            assert sum(len(c.token_ids) for o in raw for c in o.outputs) == expected
            best["raw"] = max(best["raw"], expected / seconds)
    finally:
        sampler.close()
    return (
        {"startup_s": startup, "tokens_per_s": best["prmkit"], "tokens": float(expected)},
        {"startup_s": startup, "tokens_per_s": best["raw"], "tokens": float(expected)},
    )


def scorer_overhead(args: argparse.Namespace, console: Console, tmp: Path) -> None:
    """prmkit's vLLM PRM scorer against raw LLM.encode on the same engine and the same token ids."""
    from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer

    from prmkit.engines import make_scorer

    lm = make_tiny_model(tmp / "scorer_lm", "qwen2", seed=0, max_position_embeddings=4096, **SIZES[args.scorer_size])
    config = AutoConfig.from_pretrained(lm)
    config.num_labels = 2
    torch.manual_seed(0)
    AutoModelForTokenClassification.from_config(config).save_pretrained(tmp / "prm")
    AutoTokenizer.from_pretrained(lm).save_pretrained(tmp / "prm")
    step = "We add the two numbers and carry the result over to the next line of the sum"
    items = [
        (f"Problem {i}: compute the total.", [f"{step} {i} {k}." for k in range(args.scorer_steps)])
        for i in range(args.scorer_solutions)
    ]
    t0 = time.perf_counter()
    scorer = make_scorer("vllm", model=str(tmp / "prm"), format="prmkit", device="auto")
    startup = time.perf_counter() - t0
    start = time.perf_counter()
    encoded = [scorer.format.encode(scorer.tokenizer, p, s, scorer.max_length) for p, s in items]
    render_s = time.perf_counter() - start  # what prmkit's call does first: render and tokenize each solution
    prompts = [{"prompt_token_ids": e.input_ids} for e in encoded]
    tokens = sum(len(e.input_ids) for e in encoded)
    best = {"prmkit": 0.0, "raw": 0.0}
    try:
        scorer.score(items[:2])
        for _ in range(args.repeats):
            start = time.perf_counter()
            scorer.score(items)
            best["prmkit"] = max(best["prmkit"], tokens / (time.perf_counter() - start))
            start = time.perf_counter()
            scorer.llm.encode(prompts, pooling_task="token_classify", use_tqdm=False)
            best["raw"] = max(best["raw"], tokens / (time.perf_counter() - start))
    finally:
        scorer.close()
    console.print(
        f"prmkit's scorer renders and tokenizes the solutions itself: {render_s:.3f} s of its call "
        f"({render_s * best['prmkit'] / tokens:.0%}); raw LLM.encode gets the token ids ready"
    )
    table = Table(
        title=f"PRM scorer: {args.scorer_solutions} solutions x {args.scorer_steps} steps "
        f"({tokens / len(items):.0f} tokens each), {args.scorer_size} token classifier; start-up {startup:.1f} s",
        title_justify="left",
    )
    for col in ("path", "scored tokens/s", "vs raw"):
        table.add_column(col, justify="left" if col == "path" else "right")
    for name in ("raw", "prmkit"):
        table.add_row(
            "raw LLM.encode" if name == "raw" else "prmkit vLLM scorer",
            f"{best[name]:,.0f}",
            f"{best[name] / best['raw']:.1%}",
        )
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="world,bigger", help=f"comma-separated; known: {', '.join(SIZES)}")
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--max-batch-size", type=int, default=256, help="sequences per step (vLLM: max_num_seqs)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads for hf (0: torch's default)")
    parser.add_argument("--model", default=None, help="a real model (folder or .gguf) instead of the tiny sizes")
    parser.add_argument("--scorer", action="store_true", help="also: the PRM scorer against raw LLM.encode")
    parser.add_argument("--only-scorer", action="store_true", help="only the PRM scorer part")
    parser.add_argument("--scorer-size", default="world")
    parser.add_argument("--scorer-solutions", type=int, default=64)
    parser.add_argument("--scorer-steps", type=int, default=12, help="ProcessBench solutions have ~6-12 steps")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    console = Console(width=max(Console().width, 110))
    console.print(
        f"{args.prompts} prompts x {args.samples} samples x {args.new_tokens} new tokens, one batched call, "
        f"best of {args.repeats}; hf torch threads {torch.get_num_threads()}"
    )
    prompts = prompts_for(args.prompts)
    params = SamplingParams(  # one seed per prompt, as prmkit's stages sample (vLLM: one seed per request)
        n=args.samples,
        temperature=1.0,
        max_new_tokens=args.new_tokens,
        ignore_eos=True,
        prompt_seeds=[1000 + i for i in range(len(prompts))],
    )
    with tempfile.TemporaryDirectory() as tmp:
        if args.only_scorer:
            scorer_overhead(args, console, Path(tmp))
            return
        if args.model:
            models: dict[str, Path | str] = {Path(args.model).name: args.model}
        else:
            models = {s: make_tiny_model(Path(tmp) / s, "qwen2", seed=0, **SIZES[s]) for s in args.sizes.split(",")}
        # hf first for every size: an in-process vLLM engine re-binds OpenMP threads, which would slow hf after it.
        results = {
            ("hf", size): measure("hf", Path(models[size]), prompts, params, args.repeats, args.max_batch_size)
            for size in models
        }
        for size in models:
            pair = measure_vllm_and_raw(models[size], prompts, params, args.repeats, args.max_batch_size)
            results[("vllm", size)], results[("raw vLLM", size)] = pair
        for size, model_dir in models.items():
            model = make_sampler("hf", model=str(model_dir), device="cpu").model
            table = Table(
                title=f"{size} model: {count_parameters(model) / 1e6:.2f}M parameters, {SIZES.get(size, '')}",
                title_justify="left",
            )
            for col in ("engine", "start-up s", "tokens", "tokens/s", "vs hf", "vs raw vLLM"):
                table.add_column(col, justify="left" if col == "engine" else "right")
            for engine in ("hf", "vllm", "raw vLLM"):
                r = results[(engine, size)]
                ratio = r["tokens_per_s"] / results[("hf", size)]["tokens_per_s"]
                raw = r["tokens_per_s"] / results[("raw vLLM", size)]["tokens_per_s"]
                table.add_row(
                    engine,
                    f"{r['startup_s']:.1f}",
                    f"{r['tokens']:.0f}",
                    f"{r['tokens_per_s']:,.0f}",
                    f"{ratio:.2f}x",
                    f"{raw:.1%}",
                )
            console.print(table)
        if args.scorer:
            scorer_overhead(args, console, Path(tmp))


if __name__ == "__main__":
    main()
