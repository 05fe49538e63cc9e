"""`prmkit search RECIPE`: PRM-guided test-time search (best-of-N, weighted vote, beam, DVTS, early rejection).

Answers problems with a policy guided by a PRM and reports accuracy against the compute spent, over a sweep
of budgets N.

Outputs (output_dir): `results.jsonl` (one record per problem, method and budget: the chosen solution, its
step scores, answer, correctness, and in meta the generated tokens, PRM-scored tokens and wall time),
`metrics.json`, `report.md` with an accuracy-against-tokens table and `accuracy_vs_tokens.png`. Problems are
searched in chunks, each problem's samples seeded by (seed, problem id, method, budget, round), so a killed run
started again, another chunk_size or a shard split ends with the same records (wall times aside). `shard=i/n`
splits problems across runs; `merge_from=[dirs]` joins the shards' results.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from prmkit.commands import Command, register, summary_of
from prmkit.console import progress_bar
from prmkit.data.shards import ResumableWriter, merge_shards
from prmkit.engines.base import derive_seed
from prmkit.grading import is_equivalent
from prmkit.manifest import RunManifest
from prmkit.records import Record
from prmkit.search import report
from prmkit.search.methods import METHODS, Outcome, SearchContext
from prmkit.search.preflight import load_problems, preflight
from prmkit.search.recipe import MethodSpec, SearchRecipe, uses_beam_width

RESUME_SAFE = frozenset(
    {
        "policy.device",
        "policy.max_batch_size",
        "policy.dtype",
        "policy.prefix_cache_mb",
        "prm.device",
        "prm.max_batch_size",
        "prm.max_batch_tokens",
        "prm.prefix_cache_mb",
        "prm.dtype",
        "chunk_size",
    }
)
RESULTS = "results.jsonl"


def record_id(problem_id: str, label: str, budget: int) -> str:
    return f"{problem_id}/{label}/n{budget}"


def generated_bound(recipe: SearchRecipe) -> int:
    """Upper bound on the tokens one problem generates over every method and budget: whole solutions
    (N x max_new_tokens) for best_of_n, weighted_majority and majority; N candidates x max_steps x
    step_max_tokens for the tree methods (beam, dvts, early_reject)."""
    s = recipe.sampling
    total = 0
    for spec in recipe.methods.values():
        assert spec.name is not None  # SearchRecipe's validator names every method
        whole = METHODS.get(spec.name).whole_solutions
        per_candidate = s.max_new_tokens if whole else s.max_steps * s.step_max_tokens
        total += sum(n * per_candidate for n in recipe.budgets)
    return total


def _plan(recipe: SearchRecipe) -> dict[str, Any]:
    """Policy, PRM, problems, methods x budgets and the generated-token upper bound; no model, no network."""
    from prmkit.data.plan import AT_RUN_TIME, model_label, number, plan_data

    if recipe.merge_from:
        return {"merge": ", ".join(recipe.merge_from), "output": str(Path(recipe.output_dir) / RESULTS)}
    data = plan_data(recipe.data, recipe.shard)
    problems = len(load_problems(recipe)) if data.readable else data.count
    runs = len(recipe.methods) * len(recipe.budgets)
    per_problem = generated_bound(recipe)
    return {
        "policy": model_label(recipe.policy.model, recipe.policy.engine),
        "prompt": recipe.prompt.label(),
        "prm": recipe.prm.label(),
        "data": data.label,
        "problems": number(problems),
        "methods": ", ".join(k if k == v.name else f"{k} ({v.name})" for k, v in recipe.methods.items()),
        "budgets (N)": ", ".join(map(str, recipe.budgets)),
        "results": number(None if problems is None else problems * runs, f"{runs} per problem"),
        "max generated tokens (upper bound)": number(
            None if problems is None else problems * per_problem,
            f"{per_problem:,} per problem (problems {AT_RUN_TIME})",
        ),
        "output": str(Path(recipe.output_dir) / RESULTS),
    }


def outcome_record(
    problem: Record, label: str, spec: MethodSpec, budget: int, outcome: Outcome, wall_s: float
) -> Record:
    chosen = outcome.chosen
    correct = None
    oracle = None
    if problem.reference is not None:
        correct = bool(outcome.answer is not None and is_equivalent(outcome.answer, problem.reference))
        answers = {c.answer for c in outcome.candidates if c.answer is not None}
        oracle = correct or any(is_equivalent(a, problem.reference) for a in answers if a != outcome.answer)
    meta: dict[str, Any] = {
        "problem_id": problem.id,
        "method": label,
        "method_name": spec.name,
        "budget": budget,
        "generated_tokens": outcome.generated_tokens,
        "scored_tokens": outcome.scored_tokens,
        "wall_s": round(outcome.wall_s if outcome.wall_s is not None else wall_s, 6),
        "candidates": len(outcome.candidates),
        "answers": len({c.answer for c in outcome.candidates if c.answer is not None}),
        "oracle": oracle,
        "finish": chosen.finish if chosen is not None else None,
        "value": round(chosen.value, 6) if chosen is not None else None,
        **outcome.details,
    }
    if uses_beam_width(spec):
        meta["beam_width"] = spec.width(budget)
    return Record(
        id=record_id(problem.id, label, budget),
        problem=problem.problem,
        steps=list(chosen.steps) if chosen is not None else [],
        answer=outcome.answer,
        reference=problem.reference,
        correct=correct,
        scores=list(chosen.scores) if chosen is not None else None,
        meta=meta,
    )


SEARCH_PREFIX_CACHE_MB = 256
"""The policy's and the PRM's prefix caches in a search unless policy/prm.prefix_cache_mb say otherwise (hf)."""


def _engines(recipe: SearchRecipe) -> tuple[Any, Any]:
    from prmkit.score.recipe import build_scorer

    sampler = recipe.policy.build_sampler(recipe.seed, SEARCH_PREFIX_CACHE_MB)
    prm = recipe.prm
    if prm.prefix_cache_mb is None:  # each round's candidates extend the last round's: reuse their prefixes
        prm = prm.model_copy(update={"prefix_cache_mb": SEARCH_PREFIX_CACHE_MB})
    try:
        scorer = build_scorer(prm, seed=recipe.seed)
    except BaseException:
        sampler.close()
        raise
    return sampler, scorer


def run(recipe: SearchRecipe, recipe_path: str) -> dict[str, Any]:
    if recipe.merge_from:
        return merge(recipe, recipe_path)
    out_dir = Path(recipe.output_dir)
    problems, boundary, tokenizer = preflight(recipe)
    prompts = {p.id: recipe.prompt.render(p, tokenizer) for p in problems}
    manifest = RunManifest(out_dir, "search", recipe, recipe_path, resume_safe=RESUME_SAFE)
    runs = [(label, spec, budget) for label, spec in recipe.methods.items() for budget in recipe.budgets]
    writer = ResumableWriter(out_dir / RESULTS)
    chunks = [
        (k // recipe.chunk_size, problems[k : k + recipe.chunk_size])
        for k in range(0, len(problems), recipe.chunk_size)
    ]
    todo = [(i, c) for i, c in chunks if any(record_id(p.id, lb, n) not in writer for p in c for lb, _, n in runs)]
    resumed = len(writer.done_ids)
    t0 = time.perf_counter()
    sampler = scorer = None
    total = len(problems) * len(runs)
    try:
        if todo:
            sampler, scorer = _engines(recipe)
        with writer, progress_bar("searching", total=total) as advance:
            advance(total - sum(len(c) for _, c in todo) * len(runs))
            for _, chunk in todo:
                assert sampler is not None and scorer is not None  # built above whenever there is work
                ctx = SearchContext(
                    chunk,
                    [prompts[p.id] for p in chunk],
                    sampler,
                    scorer,
                    recipe.sampling,
                    boundary,
                    recipe.steps.style,
                    recipe.steps.tag,
                    derive_seed(recipe.seed),
                    max(recipe.budgets),
                )
                for label, spec, budget in runs:
                    if all(record_id(p.id, label, budget) in writer for p in chunk):
                        advance(len(chunk))
                        continue
                    start = time.perf_counter()
                    assert spec.name is not None  # SearchRecipe's validator names every method
                    outcomes = METHODS.get(spec.name)(ctx, budget, spec)
                    share = (time.perf_counter() - start) / len(chunk)
                    for problem, outcome in zip(chunk, outcomes):
                        if record_id(problem.id, label, budget) not in writer:
                            writer.write(outcome_record(problem, label, spec, budget, outcome, share))
                    advance(len(chunk))
            writer.mark_complete(total)
    finally:
        for engine in (sampler, scorer):
            if engine is not None:
                engine.close()
    engine_stats = {
        "policy": sampler.stats.as_dict() if sampler is not None else {},
        "prm": scorer.stats.as_dict() if scorer is not None else {},
    }
    metrics = finish(out_dir, recipe)
    metrics["compute_this_run"] = {
        "wall_s": round(time.perf_counter() - t0, 3),
        "records_resumed": resumed,
        "engines": engine_stats,
    }
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    manifest.finish({"problems": len(problems), "results": metrics["totals"]["records"]})
    return _rows(metrics, out_dir, resumed)


def finish(out_dir: Path, recipe: SearchRecipe) -> dict[str, Any]:
    """metrics.json and report.md from everything in results.jsonl."""
    metrics = report.summarize(report.read_results(out_dir / RESULTS))
    metrics["budgets"] = recipe.budgets
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    report.write_report(out_dir, metrics)
    return metrics


def merge(recipe: SearchRecipe, recipe_path: str) -> dict[str, Any]:
    """Join shard runs' results (each problem from exactly one shard) into output_dir, then report."""
    out_dir = Path(recipe.output_dir)
    manifest = RunManifest(out_dir, "search", recipe, recipe_path, resume_safe=RESUME_SAFE)
    counts = merge_shards(recipe.merge_from or [], out_dir, [RESULTS], recipe, resume_safe=RESUME_SAFE)
    metrics = finish(out_dir, recipe)
    manifest.finish({"results": counts[RESULTS]})
    return _rows(metrics, out_dir, 0)


def _rows(metrics: dict[str, Any], out_dir: Path, resumed: int) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for label, entry in metrics["methods"].items():
        for budget, b in sorted(entry["budgets"].items(), key=lambda kv: int(kv[0])):
            acc = "n/a" if b["accuracy"] is None else f"{b['accuracy']:.3f}"
            rows[f"{label} N={budget}: accuracy / gen tokens"] = f"{acc} / {b['generated_tokens_per_problem']:.0f}"
    t = metrics["totals"]
    rows.update(
        {
            "generated tokens": t["generated_tokens"],
            "PRM-scored tokens": t["scored_tokens"],
            "resumed results": resumed,
            "report": str(out_dir / "report.md"),
        }
    )
    return rows


register(
    Command(name="search", help=summary_of(__doc__), recipe=SearchRecipe, run=run, plan=_plan, shard_files=(RESULTS,))
)
