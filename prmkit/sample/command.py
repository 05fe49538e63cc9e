"""`prmkit sample RECIPE`: N solutions per problem from a policy, as step-split, graded prmkit records.

The output (`samples.jsonl`) is what best-of-N benchmarks, annotation and PRM training read. Problems are
processed in chunks; each problem's samples are drawn with a seed derived from (seed, problem id), so a killed
run started again regenerates exactly the missing records, and shards (`shard=i/n`, joined by `merge_from`) or
another chunk_size give the very samples of one unsharded run (tests/test_reliability.py checks both).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from prmkit.commands import Command, register, summary_of
from prmkit.console import progress_bar
from prmkit.data.plan import AT_RUN_TIME, model_label, number, plan_data
from prmkit.data.shards import ResumableWriter, merge_shards, select_shard
from prmkit.engines import SamplingParams, keyed_seeds
from prmkit.grading import extract_answer, is_equivalent
from prmkit.grading.voting import majority_answer
from prmkit.manifest import RunManifest
from prmkit.records import Record
from prmkit.sample.recipe import RESUME_SAFE, SampleRecipe
from prmkit.steps import split_steps
from prmkit.tasks import get_task


def load_problems(recipe: SampleRecipe) -> list[Record]:
    d = recipe.data
    problems = d.load("problems")
    for item, p in enumerate(problems):
        p.meta["item"] = item  # the problem's place in the data: a merge of shards restores this order
    return select_shard(problems, recipe.shard)


def _plan(recipe: SampleRecipe) -> dict[str, Any]:
    """Models, data, counts and the generated-token upper bound (problems x n x max_new_tokens); loads no model
    and reads no Hub data."""
    if recipe.merge_from:
        return {"merge": ", ".join(recipe.merge_from), "output": str(Path(recipe.output_dir) / "samples.jsonl")}
    data = plan_data(recipe.data, recipe.shard)
    problems = len(load_problems(recipe)) if data.readable else data.count
    s = recipe.sampling
    per_problem = s.n * s.max_new_tokens
    return {
        "policy": model_label(recipe.policy.model, recipe.policy.engine),
        "prompt": recipe.prompt.label(),
        "data": data.label,
        "problems": number(problems),
        "samples": number(None if problems is None else problems * s.n, f"{s.n} per problem (problems {AT_RUN_TIME})"),
        "max generated tokens (upper bound)": number(
            None if problems is None else problems * per_problem,
            f"{per_problem:,} per problem (n {s.n} x max_new_tokens {s.max_new_tokens})",
        ),
        "steps": recipe.steps.style + (f" (tag {recipe.steps.tag!r})" if recipe.steps.tag else ""),
        "output": str(Path(recipe.output_dir) / "samples.jsonl"),
    }


def _grade(recipe: SampleRecipe, problem: Record, j: int, completion: Any, task: Any) -> Record:
    steps = split_steps(completion.text, recipe.steps.style, recipe.steps.tag)
    answer = extract_answer(completion.text)
    correct = is_equivalent(answer, problem.reference) if problem.reference is not None else None
    meta: dict[str, Any] = {
        "problem_id": problem.id,
        "item": problem.meta.get("item"),
        "sample": j,
        "finish_reason": completion.finish_reason,
        "generated_tokens": completion.num_tokens,
    }
    if task is not None:
        check = task.check(task.parse_problem(problem.problem, problem.id), steps)
        meta["true_first_error"] = check.first_error
        meta["true_labels"] = list(check.labels)
    return Record(
        id=f"{problem.id}/s{j}",
        problem=problem.problem,
        steps=steps,
        answer=answer,
        reference=problem.reference,
        correct=correct,
        meta=meta,
    )


def run(recipe: SampleRecipe, recipe_path: str) -> dict[str, Any]:
    if recipe.merge_from:
        return merge(recipe, recipe_path)
    out_dir = Path(recipe.output_dir)
    manifest = RunManifest(out_dir, "sample", recipe, recipe_path, resume_safe=RESUME_SAFE)
    problems = load_problems(recipe)
    task = get_task(recipe.task) if recipe.task else None
    writer = ResumableWriter(out_dir / "samples.jsonl")
    n = recipe.sampling.n
    todo_chunks = []
    for k in range(0, len(problems), recipe.chunk_size):
        chunk = problems[k : k + recipe.chunk_size]
        if any(f"{p.id}/s{j}" not in writer for p in chunk for j in range(n)):
            todo_chunks.append((k // recipe.chunk_size, chunk))
    t0 = time.perf_counter()
    sampler = recipe.policy.build_sampler(recipe.seed) if todo_chunks else None
    done_before = len(writer.done_ids)
    with writer, progress_bar("sampling", total=len(problems)) as advance:
        advance(len(problems) - sum(len(c) for _, c in todo_chunks))
        for _, chunk in todo_chunks:
            prompts = [recipe.prompt.render(p, getattr(sampler, "tokenizer", None)) for p in chunk]
            s = recipe.sampling
            params = SamplingParams(
                n=n,
                temperature=s.temperature,
                top_p=s.top_p,
                max_new_tokens=s.max_new_tokens,
                stop=list(s.stop),
                seed=recipe.seed,
                prompt_seeds=keyed_seeds(recipe.seed, [p.id for p in chunk]),
            )
            assert sampler is not None  # built whenever a chunk is left to sample
            outputs = sampler.generate(prompts, params)
            for problem, completions in zip(chunk, outputs):
                for j, completion in enumerate(completions):
                    if f"{problem.id}/s{j}" not in writer:
                        writer.write(_grade(recipe, problem, j, completion, task))
            advance(len(chunk))
        writer.mark_complete(len(problems) * n)
    stats = sampler.stats.as_dict() if sampler is not None else {}
    if sampler is not None:
        sampler.close()
    metrics = summarize(out_dir / "samples.jsonl", n)
    metrics["compute"] = {
        "generated_tokens_this_run": stats.get("generated_tokens", 0),
        "prompt_tokens_this_run": stats.get("prompt_tokens", 0),
        "engine_wall_s_this_run": round(stats.get("wall_s", 0.0), 3),
        "wall_s_this_run": round(time.perf_counter() - t0, 3),
        "records_resumed": done_before,
    }
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    manifest.finish({"problems": len(problems), "samples": metrics["samples"]})
    return {
        "problems": len(problems),
        "samples": metrics["samples"],
        "accuracy (mean over samples)": metrics["accuracy"],
        f"majority vote @{n}": metrics["majority_accuracy"],
        f"pass@{n}": metrics["pass_at_n"],
        "generated tokens (all samples)": metrics["generated_tokens"],
        "resumed records": done_before,
        "output": str(out_dir / "samples.jsonl"),
    }


def merge(recipe: SampleRecipe, recipe_path: str) -> dict[str, Any]:
    """Join finished shard runs of this recipe (merge_from) into output_dir: each sample once, in the order an
    unsharded run writes them (data order, then sample index), then the metrics."""
    out_dir = Path(recipe.output_dir)
    manifest = RunManifest(out_dir, "sample", recipe, recipe_path, resume_safe=RESUME_SAFE)

    def order(d: dict[str, Any]) -> tuple[int, int]:
        meta = d.get("meta", {})
        item, j = meta.get("item"), meta.get("sample")
        return (item if isinstance(item, int) else 1 << 62, j if isinstance(j, int) else 0)

    counts = merge_shards(
        recipe.merge_from or [], out_dir, ["samples.jsonl"], recipe, resume_safe=RESUME_SAFE, order=order
    )
    metrics = summarize(out_dir / "samples.jsonl", recipe.sampling.n)
    metrics["merged_from"] = list(recipe.merge_from or [])
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    manifest.finish({"samples": counts["samples.jsonl"]})
    return {
        "merged shards": len(recipe.merge_from or []),
        "samples": metrics["samples"],
        "accuracy (mean over samples)": metrics["accuracy"],
        "output": str(out_dir / "samples.jsonl"),
    }


def summarize(path: Path, n: int) -> dict[str, Any]:
    """Accuracy, majority vote and pass@n over the samples on disk (whole file, resumed or not)."""
    by_problem: dict[str, list[dict[str, Any]]] = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            by_problem.setdefault(d["meta"]["problem_id"], []).append(d)
    graded = [d for ds in by_problem.values() for d in ds if d["correct"] is not None]
    per_problem = [ds for ds in by_problem.values() if ds and ds[0]["reference"] is not None]
    majority_hits = 0
    for ds in per_problem:
        voted = majority_answer([d["answer"] for d in ds])
        majority_hits += bool(voted is not None and is_equivalent(voted, ds[0]["reference"]))
    out: dict[str, Any] = {
        "problems": len(by_problem),
        "samples": sum(len(ds) for ds in by_problem.values()),
        "n": n,
        "accuracy": sum(bool(d["correct"]) for d in graded) / len(graded) if graded else None,
        "majority_accuracy": majority_hits / len(per_problem) if per_problem else None,
        "pass_at_n": sum(any(d["correct"] for d in ds) for ds in per_problem) / len(per_problem)
        if per_problem
        else None,
        "generated_tokens": sum(d["meta"].get("generated_tokens", 0) for ds in by_problem.values() for d in ds),
        "truncated": sum(d["meta"].get("finish_reason") == "length" for ds in by_problem.values() for d in ds),
    }
    return out


register(
    Command(
        name="sample",
        help=summary_of(__doc__),
        recipe=SampleRecipe,
        run=run,
        plan=_plan,
        shard_files=("samples.jsonl",),
    )
)
