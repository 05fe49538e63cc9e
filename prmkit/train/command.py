"""`prmkit train RECIPE`: fine-tune a PRM (prm, implicit, likelihood) or a policy (sft) into a checkpoint.

Outputs (in output_dir): `final/` (the checkpoint with prmkit_prm.json), `metrics.json` (train loss, eval
metrics, tokens/s, wall time, trained tokens, labels dropped by truncation), `recipe.yaml` + `manifest.json`,
and Trainer checkpoints (`checkpoint-N/`): rerunning the same command after a kill resumes from the last one.
Data parallel on several devices: `accelerate launch --num_processes N -m prmkit train RECIPE` (on a machine
without GPUs add `--multi_gpu`, which picks accelerate's multi-process launcher; the ranks then use gloo).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from prmkit.commands import Command, register, summary_of
from prmkit.records import Record
from prmkit.train.fit import fit, read_data
from prmkit.train.recipe import TrainRecipe


def run(recipe: TrainRecipe, recipe_path: str) -> dict[str, Any]:
    from prmkit.train.trainer import release_process_group

    try:
        result = _report(recipe, recipe_path)
    except BaseException:
        release_process_group(wait=False)  # a failed rank must not wait on the others at a barrier
        raise
    release_process_group()
    return result


def _report(recipe: TrainRecipe, recipe_path: str) -> dict[str, Any]:
    """Train, then (rank 0) evaluate, save the final checkpoint and write metrics.json."""
    from prmkit.train.checkpoint import metadata, save_final
    from prmkit.train.model_card import model_card

    t_start = time.perf_counter()
    out_dir = Path(recipe.output_dir)
    f = fit(recipe, recipe_path)
    if not f.is_main:
        return {"rank": f"{f.trainer.args.process_index} (rank 0 writes the checkpoint and metrics)"}
    trainer, objective, tokenizer, encoded, eval_records = (
        f.trainer,
        f.objective,
        f.tokenizer,
        f.encoded,
        f.eval_records,
    )
    eval_cb, clock, last, result, tokens_run = f.eval_callback, f.clock, f.resumed_from, f.result, f.tokens_run
    run_s = clock.run_seconds()
    train_s = run_s - eval_cb.seconds  # evaluation during training is not training throughput
    before_s, tokens_before = clock.before_s, clock.tokens_before
    args = trainer.args
    model = trainer.model
    objective.finish(model)
    final_metrics = eval_cb.run(model, trainer.state.global_step) if eval_records else {}
    meta = metadata(objective, recipe)
    final = save_final(model, tokenizer, out_dir / "final", meta, merge_lora=recipe.lora is None or recipe.lora.merge)
    task_metrics = policy_accuracy(recipe, final, eval_records) if objective.trains_policy else {}

    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    metrics = {
        "objective": recipe.objective,
        "train": {
            "loss_first": losses[0] if losses else None,
            "loss_last": losses[-1] if losses else None,
            "train_loss_mean": result.training_loss,
            "steps": trainer.state.global_step,
            "epochs": trainer.state.epoch,
            "stopped_by_time": bool(recipe.training.max_time_s and clock.elapsed >= recipe.training.max_time_s),
            "resumed_from": last,
        },
        "data": {**encoded.stats.as_dict(), "eval_records": len(eval_records)},
        "eval": final_metrics,
        "eval_history": eval_cb.history,
        "policy": task_metrics,
        "compute": {
            "trained_tokens_this_run": tokens_run,
            "trained_tokens_total": tokens_before + tokens_run,
            "train_time_s_this_run": round(run_s, 3),
            "train_time_s_total": round(before_s + run_s, 3),
            "tokens_per_s": round(tokens_run / train_s, 1) if train_s > 0 else None,
            "eval_time_s": round(eval_cb.seconds, 3),
            "wall_s": round(time.perf_counter() - t_start, 3),
            "world_size": args.world_size,
        },
        "loss_history": [{"step": h["step"], "loss": h["loss"]} for h in trainer.state.log_history if "loss" in h],
        "checkpoint": str(final),
    }
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    (final / "README.md").write_text(model_card(recipe, meta, metrics, str(final)), encoding="utf-8")
    if f.manifest is not None:
        f.manifest.finish(
            {
                "records": encoded.stats.records,
                "steps": trainer.state.global_step,
                "trained tokens": tokens_before + tokens_run,
            }
        )
    return summary_rows(metrics)


def summary_rows(metrics: dict[str, Any]) -> dict[str, Any]:
    d, c, t = metrics["data"], metrics["compute"], metrics["train"]
    rows: dict[str, Any] = {
        "objective": metrics["objective"],
        "training records": d["records"],
        "labels dropped by max_length": d["dropped_labels"],
        "records skipped (nothing fits)": d["skipped_records"],
        "optimizer steps": t["steps"],
        "loss first -> last": f"{t['loss_first']:.4g} -> {t['loss_last']:.4g}" if t["loss_first"] is not None else "-",
        "trained tokens": c["trained_tokens_total"],
        "tokens/s": c["tokens_per_s"],
        "train time (s)": c["train_time_s_total"],
    }
    for key, value in {**metrics["eval"], **metrics["policy"]}.items():
        if isinstance(value, float):
            rows[key] = value
    rows["checkpoint"] = metrics["checkpoint"]
    return rows


def policy_accuracy(recipe: TrainRecipe, checkpoint: Path, records: list[Record]) -> dict[str, Any]:
    """Final-answer accuracy of the trained policy on held-out problems, by the task's exact checker."""
    e = recipe.eval
    if not e.task or not records:
        return {}
    from prmkit.engines import SamplingParams
    from prmkit.engines.hf import HFSampler
    from prmkit.tasks import get_task

    task = get_task(e.task)
    problems = records[: e.problems]
    sampler = HFSampler(str(checkpoint), max_batch_size=64, seed=recipe.seed)
    prompts = [recipe.prompt.render(r, sampler.tokenizer) for r in problems]
    out: dict[str, Any] = {"problems": len(problems)}
    for temp in e.temperatures:
        params = SamplingParams(n=1, temperature=temp, max_new_tokens=e.max_new_tokens, seed=recipe.seed)
        completions = sampler.generate(prompts, params)
        hits = process = 0
        for rec, (c,) in zip(problems, completions):
            verdict = task.check(task.parse_problem(rec.problem, rec.id), task.split_steps(c.text))
            hits += verdict.answer_correct
            process += verdict.correct
        out[f"answer_accuracy@T{temp:g}"] = hits / len(problems)
        out[f"process_accuracy@T{temp:g}"] = process / len(problems)
    sampler.close()
    return out


def _plan(recipe: TrainRecipe) -> dict[str, Any]:
    """Init model, data, the training setup and the eval generation bound; no model, no network."""
    from prmkit.data.plan import model_label, number, plan_data
    from prmkit.train.objectives import make_objective

    make_objective(recipe)
    if recipe.init.model is not None:
        init = model_label(recipe.init.model)
    else:
        tiny = recipe.init.tiny
        assert tiny is not None  # InitSpec's validator: exactly one of model and tiny
        init = f"tiny {tiny.arch} made from scratch (hidden {tiny.hidden_size}, {tiny.num_layers} layers)"
    data = plan_data(recipe.data)
    records = len(read_data(recipe.data)) if data.readable else data.count
    t = recipe.training
    rows: dict[str, Any] = {
        "objective": recipe.objective,
        "init": init,
        "data": data.label,
        "training records": number(records),
    }
    if recipe.objective == "prm":
        p = recipe.prm
        rows["prm"] = (
            f"head {p.head}, step separator {p.step_separator!r}, labels {p.label_type}"
            + (", chat template" if p.chat_template else "")
            + (", last step only" if p.last_step_only else "")
        )
    if recipe.eval.data is not None:
        rows["eval data"] = plan_data(recipe.eval.data).label
    elif recipe.eval.holdout:
        rows["eval data"] = f"the last {recipe.eval.holdout} training records"
    rows["epochs" if t.max_steps <= 0 else "max steps"] = t.epochs if t.max_steps <= 0 else t.max_steps
    rows["batch"] = (
        f"{t.batch_size} x grad_accum {t.grad_accum} = {t.batch_size * t.grad_accum} sequences "
        "per optimizer step and device"
    )
    rows["learning rate"] = f"{t.learning_rate:g} ({t.lr_scheduler}, warmup {t.warmup_ratio:g})"
    rows["max length"] = recipe.max_length
    rows["precision"] = {"auto": "bf16 where the GPU has it", True: "bf16", False: "fp32"}[t.bf16]
    rows["gradient checkpointing"] = "on" if t.gradient_checkpointing else "off"
    rows["lora"] = f"r {recipe.lora.r}, alpha {recipe.lora.alpha}" if recipe.lora else "off (full fine-tune)"
    rows["time budget (s)"] = t.max_time_s or "-"
    e = recipe.eval
    from prmkit.train.objectives import OBJECTIVES  # imports torch: only when a plan is shown

    if OBJECTIVES.get(recipe.objective).trains_policy and e.task and (e.data is not None or e.holdout):
        rows["max generated tokens (upper bound)"] = (
            f"{e.problems * len(e.temperatures) * e.max_new_tokens:,} (eval: {e.problems} problems x "
            f"{len(e.temperatures)} temperatures x {e.max_new_tokens})"
        )
    else:
        rows["max generated tokens (upper bound)"] = "0 (training generates nothing)"
    rows["output"] = str(Path(recipe.output_dir) / "final")
    return rows


register(Command(name="train", help=summary_of(__doc__), recipe=TrainRecipe, run=run, plan=_plan))
