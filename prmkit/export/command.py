"""`prmkit export RECIPE_OR_RUN`: step-labelled records into TRL's, OpenRLHF's or a Hugging Face data set's layout.

`prmkit export runs/x/annotate --to openrlhf --output out` reads an annotate run folder (or a labelled records
file) without a recipe (`--to`, `--labels`, `--push-to-hub` are the overrides `to=`, `labels=`, `push_to_hub=`).

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


def check_hub_reachable(repo: str, timeout_s: float = 5.0) -> None:
    """Refuse before any work when the upload cannot happen: offline mode, or no answer from the Hub."""
    import os
    import socket

    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        raise DataError(f"push_to_hub {repo!r}: HF_HUB_OFFLINE is set; unset it, or export without push_to_hub")
    host = os.environ.get("HF_ENDPOINT", "https://huggingface.co").split("://", 1)[-1].split("/", 1)[0]
    name, _, port = host.partition(":")
    try:
        socket.create_connection((name, int(port or 443)), timeout=timeout_s).close()
    except OSError as exc:
        raise DataError(
            f"push_to_hub {repo!r}: the Hub ({host}) does not answer from this machine ({exc.strerror or exc}); "
            "nothing was exported: export without push_to_hub here and upload the folder from a machine online "
            "(huggingface-cli upload REPO FOLDER --repo-type dataset)"
        ) from None


def run(recipe: ExportRecipe, recipe_path: str) -> dict[str, Any]:
    if recipe.push_to_hub:
        check_hub_reachable(recipe.push_to_hub)
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
    summary = {"records": len(exported), "layout": recipe.to, "output": str(target), "card": str(out / "README.md")}
    if recipe.push_to_hub:
        from huggingface_hub import HfApi

        api = HfApi()
        api.create_repo(recipe.push_to_hub, repo_type="dataset", exist_ok=True)
        api.upload_folder(folder_path=str(out), repo_id=recipe.push_to_hub, repo_type="dataset")
        summary["pushed to"] = f"https://huggingface.co/datasets/{recipe.push_to_hub}"
    manifest.finish({"records": len(exported)})
    return summary


def from_path(path: str) -> dict[str, Any]:
    """The recipe for `prmkit export PATH`: a labelled records file, or an annotate run's labels.jsonl; the
    export goes to <run>/export (set --output and to=... as overrides)."""
    source = Path(path)
    if source.is_dir():
        if not (source / "labels.jsonl").is_file():
            raise DataError(f"{path}: no labels.jsonl here; name an annotate run folder or a labelled records file")
        return {"data": {"path": str(source / "labels.jsonl")}, "output_dir": str(source / "export")}
    return {"data": {"path": str(source)}, "output_dir": str(source.with_name("export"))}


def _plan(recipe: ExportRecipe) -> dict[str, Any]:
    from prmkit.data.plan import plan_data

    return {
        "data": plan_data(recipe.data).label,
        "layout": recipe.to,
        "labels": recipe.labels,
        "output": recipe.output_dir,
    }


register(
    Command(
        name="export",
        help=summary_of(__doc__),
        recipe=ExportRecipe,
        run=run,
        plan=_plan,
        from_path=from_path,
        key_options=("to", "labels", "push_to_hub"),
    )
)
