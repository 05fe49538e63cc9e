"""One process against Ray shards on this machine: the same `sample` and `annotate` (mc) workload, side by side.

Why: `launcher: {name: ray}` must pay for itself; this measures what it costs (Ray's start-up, a task's round
trip, a fresh worker importing prmkit and torch) and what it buys on this machine's cores. Every run uses a
fixed torch thread count (--threads, default 1 per process), so the comparison is not an OpenMP artefact; the
one-process run is also given all the cores' threads for fairness. The records of the two are compared line by
line (per-record seeds make them equal up to the float noise of other batch shapes).

    python benchmarks/launcher.py                     # 400 problems x 8 samples; mc labels of 400 solutions
    python benchmarks/launcher.py --problems 800 --shards 2 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prmkit.commands import COMMANDS, load_builtin_commands  # noqa: E402
from prmkit.launcher import launch  # noqa: E402


def make_world(root: Path, problems: int) -> None:
    from prmkit.models import tiny

    tiny.make_world(root, problems, text_problems=200, hidden_size=256, num_layers=4, num_heads=8)


def recipes(root: Path, out: Path, args: argparse.Namespace, launcher: dict | None, threads: int):
    policy = {"model": str(root / "policy"), "device": "cpu", "threads": threads}
    sample = COMMANDS.get("sample").recipe.model_validate(
        {
            "seed": 3,
            "output_dir": str(out / "sample"),
            "task": "arithmetic",
            "data": {"path": str(root / "problems.jsonl")},
            "policy": policy,
            "sampling": {"n": args.n, "temperature": 1.0, "max_new_tokens": 48},
            "steps": {"style": "lines"},
            "chunk_size": 16,
            **({"launcher": launcher} if launcher else {}),
        }
    )
    annotate = COMMANDS.get("annotate").recipe.model_validate(
        {
            "seed": 3,
            "output_dir": str(out / "annotate"),
            # the world's reference solutions (3-5 steps each): every prefix gets rollouts, as real solutions do
            "solutions": {"path": str(root / "problems.jsonl")},
            "policy": policy,
            "rollout": {"k": 2, "max_new_tokens": 24},
            "steps": {"style": "lines"},
            "method": {"name": "mc"},
            "chunk_size": 16,
            **({"launcher": launcher} if launcher else {}),
        }
    )
    return sample, annotate


def timed_chain(root: Path, out: Path, args: argparse.Namespace, launcher: dict | None, threads: int) -> dict:
    sample, annotate = recipes(root, out, args, launcher, threads)
    times = {}
    for name, recipe in (("sample", sample), ("annotate", annotate)):
        start = time.perf_counter()
        launch(COMMANDS.get(name), recipe, "benchmarks/launcher.py")
        times[name] = round(time.perf_counter() - start, 2)
    return times


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--problems", type=int, default=400)
    ap.add_argument("--n", type=int, default=8, help="samples per problem")
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process (Ray: per shard task)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    os.environ["PRMKIT_QUIET"] = "1"
    load_builtin_commands()
    import ray

    cores = os.cpu_count() or 1
    work = Path(tempfile.mkdtemp(prefix="prmkit-launcher-"))
    make_world(work, args.problems)
    rows = {
        f"one process, {args.threads} thread(s)": timed_chain(work, work / "local", args, None, args.threads),
        f"one process, {cores} threads": timed_chain(work, work / "local-all", args, None, cores),
    }
    start = time.perf_counter()
    ray.init(
        num_cpus=cores,
        include_dashboard=False,
        log_to_driver=False,
        logging_level="warning",
        runtime_env={"env_vars": {"PRMKIT_QUIET": "1", "PRMKIT_THREADS": str(args.threads)}},
    )
    startup = time.perf_counter() - start

    @ray.remote(num_cpus=1)
    def noop() -> int:
        return os.getpid()

    @ray.remote(num_cpus=1)
    def cold_import() -> float:
        t = time.perf_counter()
        from prmkit.commands import load_builtin_commands

        load_builtin_commands()  # what a shard task loads first: prmkit's stages, torch, transformers

        return time.perf_counter() - t

    ray.get(noop.remote())
    start = time.perf_counter()
    ray.get([noop.remote() for _ in range(20)])
    round_trip = (time.perf_counter() - start) / 20
    import_s = ray.get(cold_import.remote())
    launcher = {"name": "ray", "address": "auto", "shards": args.shards, "num_cpus": max(1, cores // args.shards)}
    rows[f"Ray, {args.shards} shards x {args.threads} thread(s)"] = timed_chain(
        work, work / "ray", args, launcher, args.threads
    )
    ray.shutdown()
    differing = {}
    for stage, name in (("sample", "samples.jsonl"), ("annotate", "labels.jsonl")):
        mine = (work / "local" / stage / name).read_bytes().split(b"\n")
        theirs = (work / "ray" / stage / name).read_bytes().split(b"\n")
        differing[stage] = (
            f"{sum(a != b for a, b in zip(mine, theirs)) + abs(len(mine) - len(theirs))} of {len(mine) - 1}"
        )
    same = all(v.startswith("0 ") for v in differing.values())
    base = rows[f"one process, {args.threads} thread(s)"]
    print(
        f"workload: sample {args.problems} problems x {args.n} samples x 48 tokens; annotate mc (k=2 after each step) "
        f"on {args.problems} reference solutions; "
        f"{cores} cores; records differing between one process and Ray: {differing} (float noise of another "
        "batch shape can move a near-uniform draw to the next token)"
    )
    print("| run | sample s | annotate s | total s | vs one process |")
    print("|---|---|---|---|---|")
    for name, t in rows.items():
        total = t["sample"] + t["annotate"]
        print(
            f"| {name} | {t['sample']} | {t['annotate']} | {total:.2f} | "
            f"{(base['sample'] + base['annotate']) / total:.2f}x |"
        )
    print(
        f"Ray start-up (ray.init, local cluster): {startup:.2f} s; a warm task's round trip: "
        f"{1000 * round_trip:.1f} ms; a fresh worker importing prmkit + torch: {import_s:.2f} s"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "runs": rows,
                    "ray_startup_s": startup,
                    "task_round_trip_s": round_trip,
                    "worker_import_s": import_s,
                    "byte_equal": same,
                    "records_differing": differing,
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
