"""`make gpu-smoke`: every GPU recipe's code path on random-weight models of the real shapes, a handful of items each.

Why: the GPU recipes (recipes/gsm8k, recipes/processbench) name Hub models a GPU box may not reach. This makes a
Qwen2.5-Math-1.5B-shaped policy and a Qwen2.5-Math-PRM-7B-shaped Qwen2ForProcessRewardModel with random weights
(prmkit/models/shapes.py), then runs the shipped recipes themselves through the `prmkit` CLI, with overrides
that point them at those models, at the bundled fixtures (tests/fixtures) and at small sizes:

    sample       recipes/gsm8k/sample.yaml           policy through vLLM
    annotate     recipes/gsm8k/annotate_mc.yaml      MC rollouts through vLLM
    train        recipes/gsm8k/prm.yaml              1.5B PRM, bf16, gradient checkpointing, a few steps
    processbench recipes/processbench/qwen2.5-math-prm-7b.yaml   the 7B PRM through hf
    bestofn      recipes/gsm8k/bench_bestofn.yaml    the 7B PRM scoring the samples
    search       recipes/gsm8k/search.yaml           vLLM policy and 7B PRM on one GPU

Printed per stage: wall time, tokens (generated, or scored/trained), tokens/s, and peak GPU memory in use on the
device (polled with nvidia-smi every 0.2 s, all processes: vLLM's engine runs in its own), with the exit code.
Random weights: the accuracies mean nothing; the point is that each path runs at the real sizes, and how fast.

    python benchmarks/gpu_smoke.py                          # real shapes on CUDA (exit 2 without CUDA)
    python benchmarks/gpu_smoke.py --shapes tiny --device cpu   # the same code path on CPU, tiny shapes (a test)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
GSM8K = FIXTURES / "grading" / "gsm8k_test_sample.jsonl"
PROCESSBENCH = FIXTURES / "bench" / "processbench" / "gsm8k.json"
SHAPE_SETS = {"real": ("qwen2.5-math-1.5b", "qwen2.5-math-7b"), "tiny": ("tiny-policy", "tiny-prm")}


class DeviceMemory:
    """Peak GPU memory in use (MiB, the whole device) while a stage runs, polled with nvidia-smi."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and shutil.which("nvidia-smi") is not None
        self.peak: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _used(self) -> int | None:
        try:
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i", "0"],
                capture_output=True,
                text=True,
                timeout=5,
            ).stdout.strip()
            return int(out.splitlines()[0])
        except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
            return None

    def _poll(self) -> None:
        while not self._stop.is_set():
            used = self._used()
            if used is not None:
                self.peak = max(self.peak or 0, used)
            self._stop.wait(0.2)

    def __enter__(self) -> DeviceMemory:
        if self.enabled:
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def stage_tokens(name: str, out: Path) -> list[tuple[str, int | None, float | None]]:
    """[(what, tokens, engine seconds)] from a stage's metrics.json: the seconds the engine itself spent on them
    (model loading and start-up excluded; the stage's whole wall time is reported beside)."""
    m = read_json(out / "metrics.json")
    if name == "sample":
        c = m.get("compute") or {}
        return [("generated", c.get("generated_tokens_this_run"), c.get("engine_wall_s_this_run"))]
    if name in ("annotate", "search"):
        engines = (m.get("compute_this_run") or {}).get("engines") or {}
        policy, prm = engines.get("policy") or {}, engines.get("prm") or {}
        rows = [("generated", policy.get("generated_tokens"), policy.get("wall_s"))]
        if prm:
            rows.append(("PRM-scored", prm.get("scored_tokens"), prm.get("wall_s")))
        return rows
    if name == "train":
        c = m.get("compute") or {}
        return [("trained", c.get("trained_tokens_this_run"), c.get("train_time_s_this_run"))]
    if name in ("processbench", "bestofn"):
        c = m.get("compute") or {}
        return [("PRM-scored", c.get("scored_tokens_this_run"), c.get("wall_s_this_run"))]
    return []


def stages(out: Path, policy: Path, prm: Path, device: str, small: bool) -> list[tuple[str, str, str, list[str]]]:
    """(name, prmkit command, shipped recipe, overrides): each GPU recipe pointed at the random models."""
    problems, n, tokens = (4, 2, 32) if small else (16, 8, 256)
    on_cpu = device == "cpu"
    policy_dev = [f"policy.device={device}"] + (["policy.dtype=float32"] if on_cpu else [])
    prm_dev = [f"prm.device={device}"] + (["prm.dtype=float32"] if on_cpu else [])
    gsm8k = [f"data.path={GSM8K}", "data.layout=gsm8k", "data.subset=null", "data.split=null"]
    return [
        (
            "sample",
            "sample",
            "recipes/gsm8k/sample.yaml",
            [
                f"output_dir={out / 'sample'}",
                *gsm8k,
                f"data.limit={problems}",
                f"policy.model={policy}",
                *policy_dev,
                f"sampling.n={n}",
                f"sampling.max_new_tokens={tokens}",
                "chunk_size=64",
            ],
        ),
        (
            "annotate",
            "annotate",
            "recipes/gsm8k/annotate_mc.yaml",
            [
                f"output_dir={out / 'annotate'}",
                f"solutions.path={GSM8K}",
                "solutions.layout=gsm8k",
                f"solutions.limit={problems}",
                f"policy.model={policy}",
                *policy_dev,
                "rollout.k=4",
                f"rollout.max_new_tokens={tokens}",
                "steps.style=lines",
            ],
        ),
        (
            "train",
            "train",
            "recipes/gsm8k/prm.yaml",
            [
                f"output_dir={out / 'train'}",
                f"data.path={out / 'annotate' / 'labels.jsonl'}",
                f"init.model={policy}",
                f"training.max_steps={2 if small else 8}",
                "training.batch_size=2",
                "training.grad_accum=1",
                "training.save_steps=1000",
                "training.eval_steps=1000",
                "eval.holdout=0",
                # bf16 and gradient checkpointing as the recipe sets them; a CPU test trains in float32
                *(["training.bf16=false"] if on_cpu else ["training.bf16=true"]),
            ],
        ),
        (
            "processbench",
            "bench",
            "recipes/processbench/qwen2.5-math-prm-7b.yaml",
            [f"output_dir={out / 'processbench'}", f"data.path={PROCESSBENCH}", f"prm.model={prm}", *prm_dev],
        ),
        (
            "bestofn",
            "bench",
            "recipes/gsm8k/bench_bestofn.yaml",
            [
                f"output_dir={out / 'bestofn'}",
                f"data.path={out / 'sample' / 'samples.jsonl'}",
                f"prm.model={prm}",
                *prm_dev,
                "bestofn.trials=4",
            ],
        ),
        (
            "search",
            "search",
            "recipes/gsm8k/search.yaml",
            [
                f"output_dir={out / 'search'}",
                *gsm8k,
                f"data.limit={max(2, problems // 4)}",
                f"policy.model={policy}",
                *policy_dev,
                f"prm.model={prm}",
                *prm_dev,
                "budgets=[4]",
                f"sampling.max_new_tokens={tokens}",
                f"sampling.step_max_tokens={max(24, tokens // 4)}",
                "sampling.max_steps=3",
            ],
        ),
    ]


def run_stage(command: str, recipe: str, overrides: list[str], log: Path, on_gpu: bool) -> dict[str, Any]:
    prmkit = [sys.executable, "-m", "prmkit"]
    env = {**os.environ, "PRMKIT_QUIET": "1"}
    start = time.perf_counter()
    with DeviceMemory(on_gpu) as memory, log.open("w") as fh:
        rc = subprocess.call(
            [*prmkit, command, str(ROOT / recipe), *overrides], cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT
        )
    return {"rc": rc, "wall_s": round(time.perf_counter() - start, 1), "peak_gpu_mib": memory.peak}


def make_models(out: Path, shapes: tuple[str, str], device: str) -> tuple[Path, Path, dict[str, Any]]:
    """The random-weight policy and PRM, made once per shape (a `shape.json` marks a finished folder)."""
    from prmkit.models.shapes import describe, make_random_lm, make_random_qwen_prm, shape_named

    made: dict[str, Any] = {}
    paths = []
    for role, name, build in (("policy", shapes[0], make_random_lm), ("prm", shapes[1], make_random_qwen_prm)):
        folder = out / "models" / f"{role}-{name}"
        marker = folder / "shape.json"
        start = time.perf_counter()
        want = {"name": name, **describe(shape_named(name))}
        if read_json(marker) != want:
            shutil.rmtree(folder, ignore_errors=True)
            build(folder, shape_named(name), device=device)
            marker.write_text(json.dumps(want) + "\n")
        made[role] = {
            "shape": name,
            "parameters": describe(shape_named(name))["parameters"],
            "made_s": round(time.perf_counter() - start, 1),
        }
        paths.append(folder)
    return paths[0], paths[1], made


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| stage | recipe | exit | wall s | tokens | tokens/s (engine time) | peak GPU MiB |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        parts = [(kind, n, sec) for kind, n, sec in r["tokens"] if n]
        tok = "; ".join(f"{n:,} {kind}" for kind, n, _ in parts) or "n/a"
        rate = "; ".join(f"{n / sec:,.0f} {kind}" if sec else "n/a" for kind, n, sec in parts) or "n/a"
        mem = "n/a" if r["peak_gpu_mib"] is None else f"{r['peak_gpu_mib']:,}"
        lines.append(f"| {r['stage']} | {r['recipe']} | {r['rc']} | {r['wall_s']} | {tok} | {rate} | {mem} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shapes", choices=sorted(SHAPE_SETS), default="real")
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "gpu-smoke")
    ap.add_argument("--only", default=None, help="comma-separated stage names (default: all)")
    ap.add_argument("--json", type=Path, default=None, help="also write the table's figures here")
    args = ap.parse_args(argv)
    try:
        import torch
    except ImportError:
        print(
            f"gpu-smoke: {sys.executable} has no torch; run it with the Python of your GPU environment "
            "(CUDA torch, vLLM and prmkit installed: pip install -e .[vllm]), e.g. make gpu-smoke GPU_PY=python",
            file=sys.stderr,
        )
        return 2

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(
            "gpu-smoke: no CUDA device on this machine (torch.cuda.is_available() is False); it needs a GPU box. "
            "`python benchmarks/gpu_smoke.py --shapes tiny --device cpu` runs the same code path on CPU.",
            file=sys.stderr,
        )
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    on_gpu = args.device.startswith("cuda")
    policy, prm, made = make_models(args.out, SHAPE_SETS[args.shapes], args.device)
    print(f"models: {json.dumps(made)}", flush=True)
    wanted = set(args.only.split(",")) if args.only else None
    rows = []
    for name, command, recipe, overrides in stages(args.out, policy, prm, args.device, args.shapes == "tiny"):
        if wanted is not None and name not in wanted:
            continue
        shutil.rmtree(args.out / name, ignore_errors=True)  # a smoke measures a fresh run, never a resume
        result = run_stage(command, recipe, overrides, args.out / f"{name}.log", on_gpu)
        rows.append({"stage": name, "recipe": recipe, **result, "tokens": stage_tokens(name, args.out / name)})
        print(f"{name}: exit {result['rc']} in {result['wall_s']} s (log {args.out / f'{name}.log'})", flush=True)
    env = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": torch.cuda.get_device_name(0) if on_gpu else "cpu",
    }
    print(f"environment: {env}")
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps({"environment": env, "models": made, "stages": rows}, indent=2) + "\n")
    return 0 if all(r["rc"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
