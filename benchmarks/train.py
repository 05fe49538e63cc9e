"""Training benchmark: prmkit's PRM trainer against TRL's PRMTrainer, and the embedded world's tiny policy.

PRM part: the same tiny model (the quickstart policy checkpoint when it exists, else a fresh 0.79M
char-level Qwen2), the same planted-error data of the arithmetic world (hard labels), batch size,
optimizer steps, learning rate, seed, max length and CPU threads. Each trainer runs in its own
subprocess so its peak resident memory (ru_maxrss) is its own. Reported: trained (non-pad) tokens per
second of the training loop, the ratio prmkit / TRL, held-out step F1 and first-error F1 of both
checkpoints scored the same way (prmkit's format: both trainers render problem + "\\n", then each step
and "\\n", with the label on the separator), and peak memory.

Policy part: `prmkit train recipes/quickstart/policy.yaml` (sft from scratch under a time budget):
training time, tokens/s and final-answer accuracy (greedy and T=0.7) on the world's test split.

TRL's PRMTrainer lives in `trl.experimental.prm` up to trl 1.13.0 (removed in 1.14) and at the top of trl 0.x
(`make test` installs trl 0.24 with --no-deps; `pip install trl==1.13.0` for the figures in the README).
Run: `.venv/bin/python benchmarks/train.py [--steps 150] [--policy]`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_data(work: Path, n_train: int, n_eval: int, seed: int) -> None:
    from prmkit.tasks import get_task

    records = get_task("arithmetic").planted_errors(n_train + n_eval, seed, "medium", correct_share=0.4)
    for name, part in (("train", records[:n_train]), ("eval", records[n_train:])):
        (work / f"{name}.jsonl").write_text("".join(r.to_json() + "\n" for r in part))


def base_model(work: Path) -> str:
    policy = ROOT / "runs" / "quickstart" / "policy" / "final"
    if (policy / "config.json").is_file():
        return str(policy)
    from prmkit.models.tiny import make_tiny_model

    return str(make_tiny_model(work / "base", hidden_size=128, num_layers=3, num_heads=4, intermediate_size=512))


def heldout_metrics(model_dir: str, eval_path: Path) -> dict:
    """Step and first-error metrics of a token-classification checkpoint, scored through prmkit's format."""
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from prmkit.formats import PrmkitFormat
    from prmkit.records import Record
    from prmkit.train.metrics import prm_metrics

    model = AutoModelForTokenClassification.from_pretrained(model_dir).eval()
    tok = AutoTokenizer.from_pretrained(model_dir)
    fmt = PrmkitFormat()
    scores, labels = [], []
    with torch.no_grad():
        for line in eval_path.read_text().splitlines():
            rec = Record.from_dict(json.loads(line))
            enc = fmt.encode(tok, rec.problem, rec.steps, 256)
            logits = model(input_ids=torch.tensor([enc.input_ids])).logits[0]
            scores.append(fmt.step_scores(logits, enc.step_positions))
            labels.append(rec.labels[: len(enc.step_positions)])
    m = prm_metrics(scores, labels)
    return {"step_f1": m["step_f1"], "step_accuracy": m["step_accuracy"], "first_error_f1": m["first_error_f1"]}


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_prmkit(cfg: dict) -> dict:
    from prmkit.recipe import validate
    from prmkit.train.fit import fit
    from prmkit.train.recipe import TrainRecipe

    out = Path(cfg["work"]) / "prmkit_out"
    recipe = validate(
        TrainRecipe,
        {
            "seed": cfg["seed"],
            "output_dir": str(out),
            "objective": "prm",
            "max_length": 256,
            "data": {"path": str(Path(cfg["work"]) / "train.jsonl")},
            "init": {"model": cfg["model"]},
            "training": {
                "max_steps": cfg["steps"],
                "batch_size": cfg["batch_size"],
                "learning_rate": cfg["lr"],
                "logging_steps": 10,
                "save_steps": 10**6,
                "threads": cfg["threads"],
            },
        },
        "benchmark",
    )
    f = fit(recipe)
    train_s = f.clock.run_seconds()  # the trainer.train() loop, as timed for TRL below
    rss = peak_rss_mib()
    f.trainer.model.save_pretrained(out / "final")
    f.tokenizer.save_pretrained(out / "final")
    return {"tokens": f.trainer.tokens_seen, "train_s": train_s, "peak_rss_mib": rss, "final": str(out / "final")}


def worker_trl(cfg: dict) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    try:
        from trl.experimental.prm import PRMConfig, PRMTrainer  # trl 1.x up to 1.13
    except ImportError:
        from trl import PRMConfig, PRMTrainer  # trl 0.x (make test installs 0.24)

    from prmkit.records import Record

    torch.set_num_threads(cfg["threads"])
    rows = []
    for line in (Path(cfg["work"]) / "train.jsonl").read_text().splitlines():
        r = Record.from_dict(json.loads(line))
        rows.append({"prompt": r.problem + "\n", "completions": r.steps, "labels": [lab >= 0.5 for lab in r.labels]})
    out = Path(cfg["work"]) / "trl_out"
    tok = AutoTokenizer.from_pretrained(cfg["model"])
    model = AutoModelForTokenClassification.from_pretrained(cfg["model"], num_labels=2)
    args = PRMConfig(
        output_dir=str(out),
        per_device_train_batch_size=cfg["batch_size"],
        max_steps=cfg["steps"],
        learning_rate=cfg["lr"],
        seed=cfg["seed"],
        logging_steps=10,
        save_strategy="no",
        report_to="none",
        step_separator="\n",
        max_length=256,
        disable_tqdm=True,
        use_cpu=True,
        dataloader_pin_memory=False,
        include_num_input_tokens_seen="non_padding",
    )
    trainer = PRMTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok)
    t0 = time.perf_counter()
    trainer.train()
    train_s = time.perf_counter() - t0
    rss = peak_rss_mib()
    trainer.model.save_pretrained(out / "final")
    tok.save_pretrained(out / "final")
    return {
        "tokens": int(trainer.state.num_input_tokens_seen),
        "train_s": train_s,
        "peak_rss_mib": rss,
        "final": str(out / "final"),
    }


WORKERS = {"prmkit": worker_prmkit, "trl": worker_trl}


def run_worker(name: str, cfg: dict) -> dict:
    env = {**os.environ, "PRMKIT_QUIET": "1", "TRL_EXPERIMENTAL_SILENCE": "1", "OMP_NUM_THREADS": str(cfg["threads"])}
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", name, "--config", json.dumps(cfg)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{name} worker failed:\n{proc.stderr[-4000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result.update(heldout_metrics(result["final"], Path(cfg["work"]) / "eval.jsonl"))
    result["tokens_per_s"] = result["tokens"] / result["train_s"]
    return result


def policy_benchmark() -> dict:
    out = ROOT / "runs" / "bench-policy"
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "prmkit", "train", "recipes/quickstart/policy.yaml", f"output_dir={out}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PRMKIT_QUIET": "1"},
    )
    if proc.returncode != 0:
        raise SystemExit(f"policy training failed:\n{proc.stderr[-3000:]}")
    m = json.loads((out / "metrics.json").read_text())
    return {
        "wall_s": time.perf_counter() - t0,
        "train_s": m["compute"]["train_time_s_total"],
        "tokens_per_s": m["compute"]["tokens_per_s"],
        "steps": m["train"]["steps"],
        **m["policy"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", choices=sorted(WORKERS))
    ap.add_argument("--config")
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--train-records", type=int, default=2400)
    ap.add_argument("--eval-records", type=int, default=400)
    ap.add_argument("--policy", action="store_true", help="also train the quickstart tiny policy and report it")
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(WORKERS[a.worker](json.loads(a.config))))
        return
    from rich.console import Console
    from rich.table import Table

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        make_data(work, a.train_records, a.eval_records, seed=11)
        cfg = {
            "work": str(work),
            "model": base_model(work),
            "steps": a.steps,
            "batch_size": a.batch_size,
            "lr": a.lr,
            "seed": 0,
            "threads": a.threads,
        }
        results = {name: run_worker(name, cfg) for name in ("prmkit", "trl")}
    table = Table(
        title=f"PRM training: {a.steps} steps, batch {a.batch_size}, {a.threads} thread(s), model {cfg['model']}"
    )
    for col in ("trainer", "tokens/s", "train s", "tokens", "step F1", "step acc", "first-error F1", "peak RSS MiB"):
        table.add_column(col, justify="right")
    for name, r in results.items():
        table.add_row(
            name,
            f"{r['tokens_per_s']:.0f}",
            f"{r['train_s']:.1f}",
            str(r["tokens"]),
            f"{r['step_f1']:.3f}",
            f"{r['step_accuracy']:.3f}",
            f"{r['first_error_f1']:.3f}",
            f"{r['peak_rss_mib']:.0f}",
        )
    console = Console()
    console.print(table)
    ratio = results["prmkit"]["tokens_per_s"] / results["trl"]["tokens_per_s"]
    console.print(f"tokens/s ratio prmkit / TRL: {ratio:.2f}")
    summary = {"prm": results, "ratio": ratio}
    if a.policy:
        p = policy_benchmark()
        summary["policy"] = p
        console.print(
            f"tiny policy: {p['steps']} steps in {p['train_s']:.0f} s of training ({p['tokens_per_s']:.0f} tokens/s); "
            f"answer accuracy greedy {p.get('answer_accuracy@T0')}, T=0.7 {p.get('answer_accuracy@T0.7')} "
            f"on {p.get('problems')} test problems"
        )
    print(json.dumps(summary, indent=1, default=str))


if __name__ == "__main__":
    main()
