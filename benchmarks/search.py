"""Accuracy against generated tokens on the embedded world: majority, best-of-N, weighted majority, beam search,
DVTS and early rejection, through `prmkit search` itself (resumable results, metrics.json, report.md, plot).

Two modes:
- `real`: the quickstart policy and PRM checkpoints (runs/quickstart/policy/final and the PRM that
  `prmkit train recipes/quickstart/prm.yaml` writes), run with recipes/quickstart/search.yaml.
- `simulated`: the same search code on engines that follow the world's exact checker: a policy that writes
  each step right except for arithmetic slips (more often on multiplications) and carries its errors on, and
  a PRM whose step score is a noisy sigmoid of the true prefix label (a partial step is judged on what is
  visible so far). It isolates the search methods from the quality of a 2-minute CPU model.
`auto` (default) runs `real` when both checkpoints exist, else `simulated`.

Targets checked: beam search at least as accurate as best-of-N at equal generated tokens for small budgets,
and early rejection with at least 30% fewer generated tokens than its base at <= 1 point accuracy loss.

    python benchmarks/search.py [--mode auto|real|simulated] [--problems 200] [--held-out SEED] [--seeds 0,1,2]
                                [--out runs/bench_search]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PRMKIT_QUIET", "1")

from prmkit.commands import COMMANDS, load_builtin_commands  # noqa: E402
from prmkit.engines import SAMPLERS, SCORERS  # noqa: E402
from prmkit.engines.base import Completion, SamplerStats, SamplingParams  # noqa: E402
from prmkit.engines.scoring import (  # noqa: E402
    ScoredSteps,
    ScorerStats,
    register_scorer,  # noqa: E402
)
from prmkit.recipe import load_recipe  # noqa: E402
from prmkit.search.recipe import SearchRecipe  # noqa: E402
from prmkit.tasks import get_task  # noqa: E402
from prmkit.tasks.arithmetic import apply, check, parse_problem  # noqa: E402

TASK = get_task("arithmetic")
SLIP = {"+": 0.12, "-": 0.12, "*": 0.35, "/": 0.35}
"""Per-step error rate of the simulated policy, by operation."""
_STEP = re.compile(r"\s*(-?\d+)\s*([-+*/])\s*(-?\d+)\s*=\s*(-?\d+)\s*\.?\s*")


def _rng(*parts: object) -> random.Random:
    return random.Random(hashlib.sha256("/".join(map(str, parts)).encode()).digest())


def _carried(problem, done: list[str]) -> int:
    if not done:
        return problem.start
    m = _STEP.fullmatch(done[-1])
    return int(m.group(4)) if m else problem.start


class SimulatedPolicy:
    """The Sampler protocol on the world's exact arithmetic, with slips; one character = one token."""

    def __init__(self, seed: int = 0, **_: object) -> None:
        self.seed = seed
        self.stats = SamplerStats()

    def _lines(self, problem, done: list[str], rng: random.Random) -> list[str]:
        """Candidate texts for the next step, most likely first, with their chances."""
        k, v = len(done), _carried(problem, done)
        if k >= len(problem.ops):
            return [(f"The answer is {v}.", 1.0)]
        op, b = problem.ops[k]
        c = apply(op, v, b)
        slip = c + rng.choice([d for d in range(-12, 13) if d])
        p = SLIP[op]
        return [(f"{v} {op} {b} = {c}", 1 - p), (f"{v} {op} {b} = {slip}", p)]

    def _step(self, problem, done: list[str], current: str, rng: random.Random) -> str:
        options = [(t, w) for t, w in self._lines(problem, done, rng) if t.startswith(current)]
        if not options:
            return current
        r, acc = rng.random() * sum(w for _, w in options), 0.0
        for text, w in options:
            acc += w
            if r <= acc:
                return text
        return options[-1][0]

    def generate(self, prompts: list[str], params: SamplingParams, progress=None) -> list[list[Completion]]:
        start = time.perf_counter()
        seed = params.seed if params.seed is not None else self.seed
        seeds = params.seeds_for(len(prompts), seed)  # a prompt's stream: its own seed, as the real engines
        out = []
        for i, prompt in enumerate(prompts):
            head, _, body = prompt.partition("\n")
            problem = parse_problem(head)
            lines = body.split("\n")
            done, current = [x for x in lines[:-1] if x.strip()], lines[-1]
            row = []
            for j in range(params.n):
                rng = _rng(seeds[i], j + params.first_sample)
                if not params.stop:
                    steps = list(done)
                    while len(steps) <= len(problem.ops):
                        steps.append(self._step(problem, steps, "", rng))
                    text = "\n".join(steps[len(done) :])
                    if len(text) + 1 > params.max_new_tokens:
                        row.append(Completion(text[: params.max_new_tokens], "length", params.max_new_tokens))
                    else:
                        row.append(Completion(text, "eos", len(text) + 1))
                    continue
                rest = self._step(problem, done, current, rng)[len(current) :]
                if len(rest) + 1 <= params.max_new_tokens:
                    row.append(Completion(rest, "stop", len(rest) + 1, params.stop[0]))
                else:
                    row.append(Completion(rest[: params.max_new_tokens], "length", params.max_new_tokens))
            out.append(row)
        self.stats.prompts += len(prompts)
        self.stats.generated_tokens += sum(c.num_tokens for r in out for c in r)
        self.stats.wall_s += time.perf_counter() - start
        return out

    def close(self) -> None:
        return None


class SimulatedPRM:
    """The Scorer protocol: score = sigmoid(+-signal + noise) of the true prefix label, noise fixed per prefix."""

    def __init__(self, signal: float = 2.0, noise: float = 2.0, **_: object) -> None:
        self.signal, self.noise = signal, noise
        self.stats = ScorerStats()

    def _good(self, problem, steps: list[str], k: int) -> bool:
        verdict = check(problem, steps[: k + 1])
        if verdict.valid[k]:
            return verdict.first_error == -1
        if verdict.first_error < k:
            return False
        # a step cut part-way (no full "a op b = c" yet) is judged on what it shows: a prefix of the right step
        v = _carried(problem, steps[:k])
        if k < len(problem.ops) and not _STEP.fullmatch(steps[k]):
            op, b = problem.ops[k]
            return f"{v} {op} {b} = {apply(op, v, b)}".startswith(steps[k])
        return f"The answer is {v}.".startswith(steps[k]) and k == len(problem.ops)

    def score(self, items, progress=None) -> list[ScoredSteps]:
        start = time.perf_counter()
        out = []
        for text, steps in items:
            problem = parse_problem(text)
            scores = []
            for k in range(len(steps)):
                z = self.signal if self._good(problem, steps, k) else -self.signal
                z += _rng(text, "\n".join(steps[: k + 1])).gauss(0.0, self.noise)
                scores.append(1 / (1 + math.exp(-z)))
            out.append(ScoredSteps(scores, 0, len(text) + 1 + sum(len(s) + 1 for s in steps)))
        self.stats.sequences += len(items)
        self.stats.scored_tokens += sum(r.tokens for r in out)
        self.stats.wall_s += time.perf_counter() - start
        return out

    def close(self) -> None:
        return None


def register_simulated() -> None:
    if "simulated" not in SAMPLERS:
        SAMPLERS.register("simulated")(SimulatedPolicy)
    if "simulated" not in SCORERS:
        register_scorer("simulated")(SimulatedPRM)


# --------------------------------------------------------------------------- targets


def _interp(points: list[tuple[float, float]], x: float) -> float | None:
    """Accuracy at `x` generated tokens on a method's curve (linear in log tokens); None outside it."""
    points = sorted(points)
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if x0 <= x <= x1:
            t = 0.0 if x1 == x0 else (math.log(x) - math.log(x0)) / (math.log(x1) - math.log(x0))
            return y0 + t * (y1 - y0)
    return points[0][1] if points and abs(points[0][0] - x) < 1e-9 else None


def paired_se(outcomes: dict, a: str, b: str, n: str) -> float | None:
    """Standard error, in points, of the accuracy difference of methods a and b at budget n over the same
    problems (each problem's right-or-wrong under a minus under b): the noise a difference must stand out of."""
    pairs = [(hits[a], hits[b]) for hits in outcomes.get(n, {}).values() if a in hits and b in hits]
    if len(pairs) < 2:
        return None
    d = [float(x) - float(y) for x, y in pairs]
    mean = sum(d) / len(d)
    return 100 * math.sqrt(sum((x - mean) ** 2 for x in d) / (len(d) - 1) / len(d))


def read_outcomes(results: Path) -> dict:
    """budget -> problem -> method label -> right or wrong, from a search run's results.jsonl."""
    out: dict = {}
    with open(results, encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            meta = row["meta"]
            out.setdefault(str(meta["budget"]), {}).setdefault(meta["problem_id"], {})[meta["method"]] = bool(
                row["correct"]
            )
    return out


def targets(metrics: dict, small: int = 4, outcomes: dict | None = None) -> list[str]:
    m = metrics["methods"]
    lines = []

    def curve(label: str) -> list[tuple[float, float]]:
        return [(b["generated_tokens_per_problem"], b["accuracy"]) for b in m[label]["budgets"].values()]

    if "beam" in m and "best_of_n" in m:
        for n, b in sorted(m["beam"]["budgets"].items(), key=lambda kv: int(kv[0])):
            if int(n) > small or int(n) < 2:
                continue
            ref = _interp(curve("best_of_n"), b["generated_tokens_per_problem"])
            verdict = (
                "n/a (outside the best-of-N curve)"
                if ref is None
                else (f"best-of-N at equal tokens {ref:.3f} -> {'MET' if b['accuracy'] >= ref else 'missed'}")
            )
            lines.append(
                f"beam N={n}: accuracy {b['accuracy']:.3f} at {b['generated_tokens_per_problem']:.0f} tokens; {verdict}"
            )
    for label, base in (("early_reject", "beam"), ("early_reject_bon", "best_of_n")):
        if label not in m or base not in m:
            continue
        for n, b in sorted(m[label]["budgets"].items(), key=lambda kv: int(kv[0])):
            ref = m[base]["budgets"].get(n)
            if ref is None or int(n) < 2:
                continue
            saved = 1 - b["generated_tokens_per_problem"] / ref["generated_tokens_per_problem"]
            loss = (ref["accuracy"] - b["accuracy"]) * 100
            ok = saved >= 0.30 and loss <= 1.0
            se = paired_se(outcomes or {}, label, base, n)
            noise = f" +- {se:.1f} paired s.e." if se is not None else ""
            lines.append(
                f"{label} N={n} vs {base}: {saved:.0%} fewer generated tokens, accuracy "
                f"{b['accuracy']:.3f} vs {ref['accuracy']:.3f} ({loss:+.1f}{noise} points lost) -> "
                f"{'MET' if ok else 'missed'}"
            )
    return lines


# --------------------------------------------------------------------------- runs


def real_available() -> bool:
    return (ROOT / "runs/quickstart/policy/final").is_dir() and (ROOT / "runs/quickstart/prm/final").is_dir()


def held_out_problems(n: int, seed: int, path: Path) -> Path:
    """`n` problems of the quickstart world's difficulty from the stream `seed`, leaving out every problem of its
    train and test splits: a larger evaluation set than the 200 test problems, never seen in training."""
    world = ROOT / "runs/quickstart/world"
    seen = {
        json.loads(line)["problem"]
        for split in ("train", "test")
        for line in open(world / f"{split}.jsonl", encoding="utf-8")
    }
    with open(world / "test.jsonl", encoding="utf-8") as fh:
        difficulty = json.loads(fh.readline())["meta"]["difficulty"]
    path.parent.mkdir(parents=True, exist_ok=True)
    kept, index = 0, 0
    with open(path, "w", encoding="utf-8") as fh:
        while kept < n:
            record = TASK.to_record(TASK.problem_at(index, seed, difficulty))
            index += 1
            if record.problem not in seen:
                fh.write(record.to_json() + "\n")
                kept += 1
    return path


def _folder(args: argparse.Namespace, mode: str, seed: int) -> Path:
    """One output folder per sampling seed; the recipe's own seed (0) keeps the plain name, so reruns resume."""
    return Path(args.out) / (mode if seed == 0 else f"{mode}_seed{seed}")


def search_command():
    """`prmkit search` from the command registry (a stage's command.py is not imported directly)."""
    load_builtin_commands()
    return COMMANDS.get("search")


def run_real(args: argparse.Namespace, seed: int) -> Path:
    data = []
    if args.held_out is not None:
        path = held_out_problems(args.problems, args.held_out, Path(args.out) / f"held_out_{args.held_out}.jsonl")
        data = [f"data.path={path}"]
    out = _folder(args, "real", seed)
    recipe = load_recipe(
        SearchRecipe,
        ROOT / "recipes/quickstart/search.yaml",
        [
            f"output_dir={out}",
            f"data.limit={args.problems}",
            *data,
            f"budgets={args.budgets}",
            *([f"seed={seed}"] if seed else []),
            *args.set,
        ],
    )
    search_command().run(recipe, "recipes/quickstart/search.yaml")
    return out


def run_simulated(args: argparse.Namespace, seed: int) -> Path:
    register_simulated()
    out = _folder(args, "simulated", seed)
    out.mkdir(parents=True, exist_ok=True)
    data = out.parent / "simulated_problems.jsonl"
    with open(data, "w") as fh:
        for p in TASK.make_problems(args.problems, seed=11):
            fh.write(TASK.to_record(p).to_json() + "\n")
    recipe = load_recipe(
        SearchRecipe,
        ROOT / "recipes/quickstart/search.yaml",
        [
            f"output_dir={out}",
            f"data.path={data}",
            "data.limit=null",
            f"budgets={args.budgets}",
            "policy.engine=simulated",
            "policy.model=simulated",
            "prm.engine=simulated",
            "prm.model=simulated",
            "prm.format=prmkit",
            "chunk_size=50",
            # the simulated engines count characters as tokens: the recipe's 3 word tokens
            # ("16 * 3") are about 6 characters, its 5 ("16 * 3 = 48") about 11
            "methods.early_reject.partial_tokens=6",
            "methods.early_reject_bon.partial_tokens=11",
            *([f"seed={seed}"] if seed else []),
            *args.set,
        ],
    )
    search_command().run(recipe, "benchmarks/search.py (simulated engines)")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("auto", "real", "simulated"), default="auto")
    parser.add_argument("--problems", type=int, default=200)
    parser.add_argument("--budgets", default="[1,2,4,8,16]")
    parser.add_argument("--out", default=str(ROOT / "runs/bench_search"))
    parser.add_argument(
        "--held-out",
        type=int,
        default=None,
        metavar="SEED",
        help="real mode: search --problems fresh problems of the world's stream SEED (none from its "
        "train or test split) instead of its test split, which holds only 200",
    )
    parser.add_argument(
        "--seeds",
        default="0",
        metavar="S,S,...",
        help="sampling seeds: each runs the whole search again; the targets pool them, since a "
        "1-point target is below the sampling noise of one run over a few hundred problems",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a recipe override, e.g. methods.early_reject.partial_tokens=8 (repeatable)",
    )
    args = parser.parse_args()
    mode = args.mode if args.mode != "auto" else ("real" if real_available() else "simulated")
    if mode == "real" and not real_available():
        sys.exit(
            "the quickstart policy or PRM checkpoint is missing: run `prmkit train recipes/quickstart/policy.yaml` "
            "and `prmkit train recipes/quickstart/prm.yaml` first, or use --mode simulated"
        )
    from prmkit.search.report import markdown_table

    seeds = [int(x) for x in args.seeds.split(",")]
    runs, outcomes = [], {}
    for seed in seeds:
        start = time.perf_counter()
        out = run_real(args, seed) if mode == "real" else run_simulated(args, seed)
        metrics = json.loads((out / "metrics.json").read_text())
        runs.append(metrics)
        for n, problems in read_outcomes(out / "results.jsonl").items():
            outcomes.setdefault(n, {}).update({f"{seed}/{pid}": hits for pid, hits in problems.items()})
        print(
            f"## prmkit search benchmark ({mode} engines, {args.problems} problems, seed {seed}, "
            f"{time.perf_counter() - start:.0f} s)\n"
        )
        print(markdown_table(metrics) + "\n")
    if len(runs) > 1:
        print(f"## targets over the {len(runs)} seeds ({len(runs) * args.problems} searches per method and N)\n")
    print("\n".join(f"- {line}" for line in targets(pooled(runs), outcomes=outcomes)))


def pooled(runs: list[dict]) -> dict:
    """Accuracy and generated tokens per problem averaged over runs of the same problems with other seeds."""
    if len(runs) == 1:
        return runs[0]
    methods: dict = {}
    for label, method in runs[0]["methods"].items():
        budgets = {}
        for n in method["budgets"]:
            rows = [run["methods"][label]["budgets"][n] for run in runs]
            budgets[n] = {
                key: sum(r[key] for r in rows) / len(rows) for key in ("accuracy", "generated_tokens_per_problem")
            }
        methods[label] = {"budgets": budgets}
    return {"methods": methods}


if __name__ == "__main__":
    main()
