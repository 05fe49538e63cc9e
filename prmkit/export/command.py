"""`prmkit export RECIPE`: step-labelled records into TRL's, OpenRLHF's or a Hugging Face data set's layout.

Outputs (output_dir): `train.jsonl` (trl, openrlhf) or `data/train.parquet` (hf), and `README.md`, a data card:
source, records, labelling method and rollouts, the label audit where the truth was known, compute, the prmkit
version and the recipe of the annotate run the records came from (read from its folder when beside them).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import yaml

from prmkit import __version__
from prmkit.commands import Command, register, summary_of
from prmkit.errors import DataError
from prmkit.export.recipe import ExportRecipe
from prmkit.manifest import RunManifest
from prmkit.records import Record


def _labels(recipe: ExportRecipe, record: Record) -> list[Any]:
    soft = (record.meta.get("annotation") or {}).get("soft")
    values = soft if recipe.labels == "soft" and isinstance(soft, list) and len(soft) == len(record.steps) else None
    values = values if values is not None else record.labels
    if values is None or len(values) != len(record.steps):
        raise DataError(f"{recipe.data.path}: record {record.id!r} has no label per step; export needs labelled steps")
    return [float(v) for v in values] if recipe.labels == "soft" else [float(v) >= 0.5 for v in values]


def rows(recipe: ExportRecipe, records: list[Record]) -> list[dict[str, Any]]:
    """The exported rows, in the input's order."""
    out = []
    for r in records:
        labels = _labels(recipe, r)
        if recipe.to == "openrlhf":
            tag = recipe.placeholder_token
            if any(tag in s for s in r.steps) or tag in r.problem:
                raise DataError(f"{recipe.data.path}: record {r.id!r} already holds the placeholder {tag!r}")
            good, bad = recipe.reward_tokens
            text = r.problem + "\n" + "".join(f"{s} {tag}\n" for s in r.steps)
            value = labels if recipe.labels == "soft" else [good if x else bad for x in labels]
            out.append({"id": r.id, "input": text, "value": value})
        else:
            out.append({"id": r.id, "prompt": r.problem, "completions": list(r.steps), "labels": labels})
    return out


def provenance(recipe: ExportRecipe) -> dict[str, Any]:
    """What the card says about where the records came from: the annotate run's recipe and metrics, if beside."""
    folder = Path(recipe.data.path).parent
    info: dict[str, Any] = {}
    # Either file may be absent (records that no annotate run wrote) or unreadable: the card then omits it.
    with contextlib.suppress(OSError, yaml.YAMLError):
        info["recipe"] = yaml.safe_load((folder / "recipe.yaml").read_text(encoding="utf-8"))
    with contextlib.suppress(OSError, ValueError):
        info["metrics"] = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    return info


def _num(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def card(recipe: ExportRecipe, exported: list[dict[str, Any]], source: dict[str, Any]) -> str:
    """The data card (README.md with a YAML header, as the Hub reads it)."""
    made = source.get("recipe") or {}
    metrics = source.get("metrics") or {}
    method = (made.get("method") or {}).get("name")
    k = (made.get("rollout") or {}).get("k")
    policy = (made.get("policy") or {}).get("model")
    steps = sum(len(r.get("completions") or r.get("value") or []) for r in exported)
    files = "data/train.parquet" if recipe.to == "hf" else "train.jsonl"
    lines = [
        "---",
        "tags: [process-reward-model, step-labels, prmkit]",
        f"configs:\n- config_name: default\n  data_files:\n  - split: train\n    path: {files}",
        "---",
        "",
        f"# Step-labelled solutions ({recipe.to} layout)",
        "",
        f"Exported by prmkit {__version__} from `{recipe.data.path}`: {len(exported):,} solutions, {steps:,} labelled "
        f"steps, {recipe.labels} labels.",
        "",
    ]
    if method:
        lines.append(
            f"- Labels: prmkit annotate, method `{method}`"
            + (f", k = {k} rollouts per prefix" if k else "")
            + (f", policy `{policy}`" if policy else "")
            + "."
        )
    audit = (metrics.get("audit") or {}).get("labels")
    if isinstance(audit, dict):
        lines.append(
            f"- Label audit against the exact truth: step accuracy {_num(audit.get('step_accuracy'))}, "
            f"first-error F1 {_num(audit.get('first_error_f1'))} ({audit.get('solutions')} solutions)."
        )
    cost = metrics.get("cost")
    if isinstance(cost, dict):
        lines.append(f"- Compute: {cost.get('rollouts')} rollouts, {cost.get('generated_tokens')} generated tokens.")
    if recipe.to == "openrlhf":
        good, bad = recipe.reward_tokens
        lines.append(
            f"- OpenRLHF: `--input_key input --label_key value --placeholder_token {recipe.placeholder_token}`"
            + (f" `--reward_tokens {good} {bad}`" if recipe.labels == "hard" else "")
            + "."
        )
    else:
        lines.append("- TRL: `PRMTrainer` reads the `prompt`, `completions` and `labels` columns as they are.")
    if made:
        lines += [
            "",
            "The annotate recipe these labels came from:",
            "",
            "```yaml",
            yaml.safe_dump(made, sort_keys=False).rstrip(),
            "```",
        ]
    return "\n".join(lines) + "\n"


def run(recipe: ExportRecipe, recipe_path: str) -> dict[str, Any]:
    records = recipe.data.load("labelled records")
    exported = rows(recipe, records)
    out = Path(recipe.output_dir)
    manifest = RunManifest(out, "export", recipe, recipe_path)
    if recipe.to == "hf":
        import datasets

        (out / "data").mkdir(parents=True, exist_ok=True)
        datasets.Dataset.from_list(exported).to_parquet(str(out / "data" / "train.parquet"))
        target = out / "data" / "train.parquet"
    else:
        target = out / "train.jsonl"
        with open(target, "w", encoding="utf-8") as fh:
            for row in exported:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    (out / "README.md").write_text(card(recipe, exported, provenance(recipe)), encoding="utf-8")
    metrics = {"records": len(exported), "to": recipe.to, "labels": recipe.labels, "output": str(target)}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    manifest.finish({"records": len(exported)})
    return {"records": len(exported), "layout": recipe.to, "output": str(target), "card": str(out / "README.md")}


def _plan(recipe: ExportRecipe) -> dict[str, Any]:
    from prmkit.data.plan import plan_data

    return {
        "data": plan_data(recipe.data).label,
        "layout": recipe.to,
        "labels": recipe.labels,
        "output": recipe.output_dir,
    }


register(Command(name="export", help=summary_of(__doc__), recipe=ExportRecipe, run=run, plan=_plan))
