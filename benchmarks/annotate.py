"""Automatic step labels against the embedded world's exact truth, per unit of compute, through `prmkit annotate`.

One run prints:
1. per labeller (`mc` hard, `mc` soft labels thresholded at 0.5, `binary`, `omega`, `consensus`): step-label
   accuracy and first-error F1 (ProcessBench's: harmonic mean of the accuracy on erroneous and on correct
   solutions) against the truth, with generated tokens and rollouts per labelled solution, and the issue's
   target: `binary` within 2 F1 points of `mc` at <= 40% of its generated tokens. The solutions to label are
   `prmkit sample`'s draws on fresh world problems. Two policies, each in its own table:
   - the policy checkpoint (`--policy`, default runs/quickstart/policy/final; trained for 60 s if missing);
     `consensus` uses that same model as its judge (nothing better runs offline here);
   - `simulated` (unless --no-simulated): benchmarks/search.py's policy on the world's exact arithmetic with
     slips (more on multiplications), carrying its errors on, and a simulated judge that names the true first
     error 70% of the time. It shows the labellers on a policy that solves a fair share of the problems,
     which a few-minute CPU checkpoint does not.
   The rollout savings are taken apart row by row, each adding one to the row above: `binary, all k` (every
   probe draws its own k rollouts: the code before early stopping), `early stop` (waves until a success),
   `+ shared prefixes` (a prefix probed by several solutions, or rounds, rolled out once), `+ solution
   witnesses` (a right solution through a prefix is a success there: rollout.reuse_solutions) and `binary`
   (the default: + lazy confirmation, method.bisect_draws 2); likewise `mc, all k` against `mc`. `--seeds
   0,1,2` runs every table per seed and then pools them: tokens summed, label accuracy averaged.
   omega runs with a smaller search budget than the paper's 100 searches per problem (--omega-searches), and
   L scaled to the character-level world (length_scale 0.2: L = 100 characters).
2. rollout throughput of the hf engine with prefix sharing (each prefix prefilled once, its KV cache copied to
   the k rollouts) against re-encoding the prefix for every rollout (HFSampler(share_prefix=False)), on the
   prefixes that `mc` rolls out from: same samples, so the ratio is a pure time ratio (target >= 1.5x);
3. SIGKILL and resume: `prmkit annotate` (omega, policy checkpoint) as a subprocess, killed with SIGKILL
   mid-run, started again with the same command; its labels.jsonl must equal an uninterrupted run's, byte
   for byte.

    .venv/bin/python benchmarks/annotate.py [--policy PATH] [--problems 24] [--n 4] [--k 4] [--seeds 0,1,2]
        [--difficulty long] [--no-policy | --no-simulated] [--skip labels,throughput,resume] [--out DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("PRMKIT_QUIET", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402
import yaml  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from prmkit.commands import COMMANDS, load_builtin_commands  # noqa: E402
from prmkit.engines import SAMPLERS  # noqa: E402
from prmkit.engines.base import Completion, SamplerStats, SamplingParams  # noqa: E402
from prmkit.records import Record  # noqa: E402
from prmkit.tasks import get_task  # noqa: E402

load_builtin_commands()  # stages are reached through the command registry, never by importing a command.py
SampleRecipe, sample = COMMANDS.get("sample").recipe, COMMANDS.get("sample").run
AnnotateRecipe, annotate = COMMANDS.get("annotate").recipe, COMMANDS.get("annotate").run

TASK = get_task("arithmetic")
PRMKIT = [sys.executable, "-m", "prmkit"]
DIFFICULTY = (yaml.safe_load((ROOT / "recipes/quickstart/world.yaml").read_text()) or {}).get("difficulty", "medium")
"""The quickstart world's difficulty: the problems the quickstart policy was trained on."""
MAX_NEW_TOKENS = 128
"""Tokens per solution and rollout (a world step is about 12 characters; 384 with --difficulty long)."""


# --------------------------------------------------------------------------- simulated engines


class SimulatedJudge:
    """A judge on the world's checker: names the true first error with probability `skill`, else another index."""

    def __init__(self, seed: int = 0, skill: float = 0.7, **_: object) -> None:
        self.seed, self.skill = seed, skill
        self.stats = SamplerStats()

    def generate(self, prompts: list[str], params: SamplingParams, progress=None) -> list[list[Completion]]:
        out = []
        for prompt in prompts:
            problem = TASK.parse_problem(re.search(r"Problem: (.*)", prompt).group(1))
            steps = re.findall(r"^Step \d+: (.*)$", prompt, re.M)
            truth = TASK.check(problem, steps).first_error
            row = []
            for j in range(params.n):
                h = int(hashlib.sha256(f"{self.seed}/{params.seed}/{prompt}/{j}".encode()).hexdigest(), 16)
                verdict = (
                    truth if (h % 1000) / 1000 < self.skill else [-1, *range(len(steps))][h // 1000 % (len(steps) + 1)]
                )
                text = f"\\boxed{{{verdict}}}"
                row.append(Completion(text, "eos", len(text)))
            out.append(row)
        self.stats.generated_tokens += sum(c.num_tokens for r in out for c in r)
        return out

    def close(self) -> None:
        return None


def register_simulated() -> None:
    from search import register_simulated as register_search_engines  # the world's arithmetic with slips

    register_search_engines()
    if "simulated_judge" not in SAMPLERS:
        SAMPLERS.register("simulated_judge")(SimulatedJudge)


# --------------------------------------------------------------------------- data and policy


def ensure_policy(path: Path, console: Console) -> Path:
    if (path / "config.json").exists():
        return path
    console.print(f"[yellow]{path} missing: training a small policy for 60 s into /tmp/bench_policy[/]")
    world = Path("/tmp/bench_world")
    if not (world / "train.jsonl").exists():
        subprocess.run(
            [*PRMKIT, "world", str(ROOT / "recipes/quickstart/world.yaml"), f"output_dir={world}"], check=True
        )
    subprocess.run(
        [
            *PRMKIT,
            "train",
            str(ROOT / "recipes/quickstart/policy.yaml"),
            "training.max_time_s=60",
            "output_dir=/tmp/bench_policy",
            f"data.path={world / 'train.jsonl'}",
            f"eval.data.path={world / 'test.jsonl'}",
        ],
        check=True,
    )
    return Path("/tmp/bench_policy/final")


def draw_solutions(work: Path, policy: dict[str, Any], problems: int, n: int, seed: int) -> Path:
    """`prmkit sample` on fresh world problems (an index range no quickstart split uses), with the truth."""
    work.mkdir(parents=True, exist_ok=True)
    data = work / "problems.jsonl"
    recs = [TASK.to_record(p) for p in TASK.make_problems(problems, seed=seed, difficulty=DIFFICULTY, start=500_000)]
    data.write_text("".join(r.to_json() + "\n" for r in recs))
    recipe = SampleRecipe.model_validate(
        {
            "seed": seed,
            "output_dir": str(work / "sample"),
            "task": "arithmetic",
            "data": {"path": str(data)},
            "policy": policy,
            "sampling": {"n": n, "temperature": 0.7, "max_new_tokens": MAX_NEW_TOKENS, "stop": []},
            "steps": {"style": "lines"},
            "chunk_size": 16,
        }
    )
    shutil.rmtree(work / "sample", ignore_errors=True)
    sample(recipe, "bench")
    # annotate refuses a solution without steps (an empty generation): label the others, from a file beside the
    # sample recipe, so rollout.reuse_solutions: auto finds it (same policy, prompt, steps and sampling)
    lines = (work / "sample" / "samples.jsonl").read_text().splitlines()
    kept = [x for x in lines if json.loads(x)["steps"]]
    (work / "sample" / "solutions.jsonl").write_text("".join(x + "\n" for x in kept))
    return work / "sample" / "solutions.jsonl"


def annotate_recipe(
    out: Path,
    solutions: Path,
    policy: dict[str, Any],
    method: str,
    k: int,
    args: argparse.Namespace,
    judge: dict[str, Any] | None = None,
) -> dict[str, Any]:
    d: dict[str, Any] = {
        "seed": 0,
        "output_dir": str(out),
        "solutions": {"path": str(solutions)},
        "policy": policy,
        "rollout": {"k": k, "temperature": 0.7, "max_new_tokens": MAX_NEW_TOKENS, "stop": []},
        "steps": {"style": "lines"},
        "method": {"name": method},
        "chunk_size": 16,
        "task": "arithmetic",
        "omega": {"max_searches": args.omega_searches, "length_scale": 0.2},
    }
    if judge is not None:
        d["judge"] = {"model": judge, "k": 1, "temperature": 0.0, "max_new_tokens": 8}
    return d


# --------------------------------------------------------------------------- 1. labels against the truth


def label_table(
    title: str, work: Path, policy: dict[str, Any], judge: dict[str, Any], args: argparse.Namespace, console: Console
) -> dict[str, dict[str, Any]]:
    t0 = time.perf_counter()
    solutions = draw_solutions(work, policy, args.problems, args.n, args.seed)
    drawn = [json.loads(x) for x in solutions.read_text().splitlines()]
    acc = sum(bool(d["correct"]) for d in drawn) / len(drawn)
    rows: dict[str, dict[str, Any]] = {}
    from prmkit.annotate.rollouts import RolloutRunner

    # (row, method, early stopping, solution witnesses, requests for one prefix share its draws, bisect_draws)
    runs = [("mc, all k", "mc", False, False, False, None), ("mc", "mc", True, "auto", True, None)]
    runs += [("binary, all k", "binary", False, False, False, None)]
    runs += [("binary, early stop", "binary", True, False, False, None)]
    runs += [("binary, + shared prefixes", "binary", True, False, True, None)]
    runs += [("binary, + solution witnesses", "binary", True, "auto", True, None)]
    runs += [("binary", "binary", True, "auto", True, 2)]
    runs += [("omega", "omega", True, "auto", True, None), ("consensus", "consensus", True, "auto", True, None)]
    for name, method, early, reuse, share, bisect in runs:
        out = work / name.replace(", + ", "+").replace(", ", "-").replace(" ", "_")
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        d = annotate_recipe(out, solutions, policy, method, args.k, args, judge if method == "consensus" else None)
        d["rollout"].update(early_stop=early, reuse_solutions=reuse)
        d["method"]["bisect_draws"] = bisect
        RolloutRunner.share_prefixes = share  # off: each request draws and pays its own (the same draws)
        try:
            annotate(AnnotateRecipe.model_validate(d), "bench")
        finally:
            RolloutRunner.share_prefixes = True
        wall = time.perf_counter() - start
        m = json.loads((out / "metrics.json").read_text())
        audits = m.get("audit", {})
        base = {
            "labelled": m["labelled"],
            "rejected": m["rejected"],
            "wall_s": wall,
            "tokens": m["cost"]["generated_tokens_per_solution"],
            "rollouts": m["cost"]["rollouts_per_solution"],
            "total_tokens": m["cost"]["generated_tokens"],
            "witnesses": m["cost"].get("witnesses", 0) / max(1, m["labelled"] + m["rejected"]),
            "labels": [json.loads(x)["labels"] for x in (out / "labels.jsonl").read_text().splitlines()],
        }
        if name == "mc, all k":
            rows["mc (hard), all k"] = {**base, **(audits.get("mc_hard") or {})}
            rows["mc (soft @0.5), all k"] = {**base, **(audits.get("mc_soft@0.5") or {})}
        elif name == "mc":
            rows["mc (hard)"] = {**base, **(audits.get("mc_hard") or audits.get("labels") or {})}
        else:
            rows[name] = {**base, **(audits.get("labels") or {})}
    table = Table(
        title=f"{title}: {len(drawn)} solutions of {args.problems} problems (answer accuracy {acc:.1%}), "
        f"k={args.k}, {time.perf_counter() - t0:.0f} s",
        title_justify="left",
    )
    for col in (
        "labeller",
        "labelled",
        "step acc",
        "first-error F1",
        "err acc",
        "correct acc",
        "gen tokens / sol",
        "rollouts / sol",
        "witnesses / sol",
        "wall s",
    ):
        table.add_column(col, justify="left" if col == "labeller" else "right")
    for name, r in rows.items():
        table.add_row(
            name,
            f"{r['labelled']}" + (f" +{r['rejected']} rej." if r["rejected"] else ""),
            fmt(r.get("step_accuracy")),
            fmt(r.get("first_error_f1")),
            fmt(r.get("first_error_error_acc")),
            fmt(r.get("first_error_correct_acc")),
            f"{r['tokens']:.0f}",
            f"{r['rollouts']:.1f}",
            f"{r['witnesses']:.1f}",
            f"{r['wall_s']:.0f}",
        )
    console.print(table)
    console.print(
        "  mc, all k and binary, all k: every probe draws its own k rollouts (the code before early stopping); "
        "each binary row below adds one saving to the row above it; binary (the default) adds lazy confirmation "
        "(method.bisect_draws 2)"
    )
    order = ["binary, all k", "binary, early stop", "binary, + shared prefixes", "binary, + solution witnesses"]
    steps = [*zip(order, order[1:]), ("binary, + solution witnesses", "binary"), ("binary, all k", "binary")]
    steps += [("mc (hard), all k", "mc (hard)")]
    for old, new in steps:
        a, b = rows[old], rows[new]
        saved = 1 - b["total_tokens"] / a["total_tokens"] if a["total_tokens"] else 0.0
        same = (
            "identical labels"
            if a["labels"] == b["labels"]
            else (
                f"first-error F1 {fmt(b.get('first_error_f1'))} vs {fmt(a.get('first_error_f1'))}, "
                f"step acc {fmt(b.get('step_accuracy'))} vs {fmt(a.get('step_accuracy'))}"
            )
        )
        console.print(f"  {new} against {old}: {saved:.0%} fewer generated tokens, {same}")
    mc, binary = rows["mc (hard), all k"], rows["binary"]
    ratio = binary["total_tokens"] / mc["total_tokens"] if mc["total_tokens"] else float("nan")
    f_mc, f_bin = mc.get("first_error_f1"), binary.get("first_error_f1")
    if f_mc is None or f_bin is None:
        console.print(
            f"  binary vs mc: first-error F1 n/a (no correct solution to label, so no F1), "
            f"step acc {fmt(binary.get('step_accuracy'))} vs {fmt(mc.get('step_accuracy'))}; "
            f"tokens {ratio:.0%} of mc, all k "
            f"(target <= {args.target:.0%}: {'met' if ratio <= args.target else 'not met'})"
        )
    else:
        diff = 100 * (f_bin - f_mc)
        met = diff >= -2 and ratio <= args.target
        console.print(
            f"  binary vs mc (all k): F1 {100 * f_bin:.1f} vs {100 * f_mc:.1f} ({diff:+.1f} points), tokens "
            f"{ratio:.0%} of mc; target (within 2 points at <= {args.target:.0%} tokens): {'met' if met else 'NOT met'}"
        )
    return rows


def pooled(
    title: str, seeds: list[int], per_seed: list[dict[str, dict[str, Any]]], args: argparse.Namespace, console: Console
) -> None:
    """Tokens summed over the seeds' runs; label accuracy averaged over them (each seed: its own solutions)."""

    def tokens(row: str) -> int:
        return sum(rows[row]["total_tokens"] for rows in per_seed)

    def mean(row: str, key: str) -> str:
        values = [rows[row].get(key) for rows in per_seed]
        return "n/a" if None in values else f"{sum(values) / len(values):.3f}"

    console.print(f"[bold]{title}: pooled over seeds {', '.join(map(str, seeds))}[/]")
    pairs = [("binary, all k", "binary"), ("binary, + shared prefixes", "binary, + solution witnesses")]
    pairs += [("binary, + solution witnesses", "binary"), ("mc (hard), all k", "mc (hard)")]
    pairs += [("mc (hard), all k", "binary")]
    for old, new in pairs:
        share = tokens(new) / tokens(old) if tokens(old) else float("nan")
        console.print(
            f"  {new}: {share:.0%} of {old}'s generated tokens ({1 - share:.0%} fewer); first-error F1 "
            f"{mean(new, 'first_error_f1')} vs {mean(old, 'first_error_f1')}, step acc {mean(new, 'step_accuracy')} "
            f"vs {mean(old, 'step_accuracy')} (means over seeds)"
        )


def fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


# --------------------------------------------------------------------------- 2. prefix sharing


def throughput(policy_path: Path, solutions: Path, args: argparse.Namespace, console: Console) -> None:
    from prmkit.annotate.rollouts import RolloutRunner
    from prmkit.engines.hf import HFSampler
    from prmkit.sections import PromptSpec, SamplingSpec

    records = [Record.from_dict(json.loads(x)) for x in solutions.read_text().splitlines()]
    spec = SamplingSpec(temperature=0.7, max_new_tokens=128)
    results = {}
    for share in (True, False):
        sampler = HFSampler(policy_path, device="cpu", max_batch_size=args.batch, share_prefix=share)
        runner = RolloutRunner(sampler, PromptSpec(), spec, "lines", None, args.throughput_k)
        prompts = [runner.prefix_text(r, i) for r in records for i in range(1, len(r.steps))][: args.prefixes]
        params = runner.params(seed=1)
        sampler.generate(prompts[:2], params)  # warm-up
        best = None
        for _ in range(args.repeats):
            start = time.perf_counter()
            out = sampler.generate(prompts, params)
            secs = time.perf_counter() - start
            best = secs if best is None else min(best, secs)
        tokens = sum(c.num_tokens for row in out for c in row)
        prompt_tokens = sum(len(sampler.tokenizer(p)["input_ids"]) for p in prompts)
        results[share] = (tokens, best, prompt_tokens, [[c.token_ids for c in row] for row in out])
        sampler.close()
    assert results[True][3] == results[False][3], "prefix sharing changed the samples"
    table = Table(
        title=f"Rollout throughput, hf engine: {args.prefixes} prefixes x k={args.throughput_k} rollouts "
        f"(mc's requests), max_batch_size {args.batch}, torch threads {torch.get_num_threads()}, "
        f"best of {args.repeats}",
        title_justify="left",
    )
    for col in ("prefix", "prompt tokens prefilled", "generated tokens", "seconds", "rollout tokens/s", "ratio"):
        table.add_column(col, justify="left" if col == "prefix" else "right")
    base = results[False][0] / results[False][1]
    for share, label in ((True, "shared (prefill once, copy KV)"), (False, "re-encoded per rollout")):
        tokens, secs, ptoks, _ = results[share]
        prefilled = ptoks if share else ptoks * args.throughput_k
        table.add_row(
            label,
            f"{prefilled:,}",
            f"{tokens:,}",
            f"{secs:.2f}",
            f"{tokens / secs:,.0f}",
            f"{tokens / secs / base:.2f}x",
        )
    console.print(table)
    ratio = (results[True][0] / results[True][1]) / base
    console.print(
        f"  prefix sharing: {ratio:.2f}x the rollout throughput of re-encoding "
        f"(target >= 1.5x: {'met' if ratio >= 1.5 else 'NOT met'}); identical samples both ways"
    )


# --------------------------------------------------------------------------- 3. SIGKILL and resume


def kill_and_resume(
    work: Path, solutions: Path, policy: dict[str, Any], args: argparse.Namespace, console: Console
) -> None:
    recipe = annotate_recipe(work / "whole", solutions, policy, "omega", args.k, args)
    recipe["chunk_size"] = 4
    work.mkdir(parents=True, exist_ok=True)
    path = work / "annotate.yaml"
    path.write_text(yaml.safe_dump(recipe))
    env = {**os.environ, "PRMKIT_QUIET": "1"}
    for d in ("whole", "killed"):
        shutil.rmtree(work / d, ignore_errors=True)
    start = time.perf_counter()
    subprocess.run([*PRMKIT, "annotate", str(path)], check=True, env=env, capture_output=True)
    whole_s = time.perf_counter() - start
    killed_dir = work / "killed"
    cmd = [*PRMKIT, "annotate", str(path), f"output_dir={killed_dir}"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    labels = killed_dir / "labels.jsonl"
    whole_lines = (work / "whole" / "labels.jsonl").read_text().count("\n")
    deadline = time.perf_counter() + 600
    while time.perf_counter() < deadline and proc.poll() is None:
        if labels.exists() and labels.read_text().count("\n") >= max(1, whole_lines // 2):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = labels.read_text().count("\n") if labels.exists() else 0
    marker = (killed_dir / "labels.jsonl.complete").exists()
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, capture_output=True)
    resume_s = time.perf_counter() - start
    same = labels.read_bytes() == (work / "whole" / "labels.jsonl").read_bytes()
    console.print(
        f"SIGKILL and resume (omega, policy checkpoint, chunk_size 4): uninterrupted run {whole_lines} "
        f"records in {whole_s:.0f} s; killed with {before} records on disk (completion marker: "
        f"{'present' if marker else 'absent'}); the rerun of the same command took {resume_s:.0f} s; "
        f"labels.jsonl {'EQUALS' if same else 'DIFFERS FROM'} the uninterrupted run's "
        f"({'met' if same and not marker else 'NOT met'})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", default="runs/quickstart/policy/final")
    parser.add_argument(
        "--problems", type=int, default=24, help="fresh world problems (the quickstart world's difficulty)"
    )
    parser.add_argument("--n", type=int, default=4, help="solutions sampled per problem")
    parser.add_argument("--k", type=int, default=4, help="rollouts per probed prefix")
    parser.add_argument("--omega-searches", type=int, default=8, help="omega's binary searches per problem")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", default="", help="comma-separated seeds for the label tables, pooled at the end")
    parser.add_argument("--out", default="runs/bench_annotate")
    parser.add_argument("--no-simulated", action="store_true", help="skip the simulated-policy table")
    parser.add_argument("--prefixes", type=int, default=96, help="throughput: prefixes rolled out")
    parser.add_argument("--throughput-k", type=int, default=8, help="throughput: rollouts per prefix")
    parser.add_argument("--batch", type=int, default=64, help="throughput: max_batch_size")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: labels,throughput,resume")
    parser.add_argument(
        "--difficulty", default=None, help="world preset of the problems (default: the quickstart world's; long: 8-12)"
    )
    parser.add_argument("--no-policy", action="store_true", help="skip the policy-checkpoint table")
    parser.add_argument("--target", type=float, default=None, help="binary's token share of mc to meet")
    args = parser.parse_args()
    global DIFFICULTY, MAX_NEW_TOKENS
    if args.difficulty:
        DIFFICULTY = args.difficulty
        MAX_NEW_TOKENS = 384 if DIFFICULTY == "long" else MAX_NEW_TOKENS
    if args.target is None:
        args.target = 0.2 if DIFFICULTY == "long" else 0.4
    torch.set_num_threads(1)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    console = Console(width=max(Console().width, 130))
    skip = set(args.skip.split(","))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    needs_policy = not args.no_policy or not {"throughput", "resume"} <= skip
    policy_path = ensure_policy(Path(args.policy), console) if needs_policy else Path(args.policy)
    policy = {"model": str(policy_path), "device": "cpu", "max_batch_size": args.batch}
    t0 = time.perf_counter()
    if "labels" not in skip:
        seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else [args.seed]
        tables: list[tuple[str, Path, dict[str, Any], dict[str, Any]]] = []
        if not args.no_policy:
            tables.append((f"Policy {policy_path}", out / "policy", policy, policy))
        if not args.no_simulated:
            register_simulated()
            tables.append(
                (
                    "Simulated policy (world arithmetic with slips), simulated judge (70% right)",
                    out / "simulated",
                    {"model": "simulated", "engine": "simulated"},
                    {"model": "simulated", "engine": "simulated_judge"},
                )
            )
        for title, work, pol, judge in tables:
            per_seed = []
            for seed in seeds:
                args.seed = seed
                where = work if len(seeds) == 1 else work / f"seed{seed}"
                per_seed.append(label_table(f"{title}, seed {seed}", where, pol, judge, args, console))
            if len(seeds) > 1:
                pooled(title, seeds, per_seed, args, console)
        args.seed = seeds[0]
    solutions = out / "policy" / "sample" / "solutions.jsonl"
    if needs_policy and not solutions.exists():
        solutions = draw_solutions(out / "policy", policy, args.problems, args.n, args.seed)
    if "throughput" not in skip:
        throughput(policy_path, solutions, args, console)
    if "resume" not in skip:
        kill_and_resume(out / "resume", solutions, policy, args, console)
    console.print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
