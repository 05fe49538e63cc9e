"""The model card (README.md) of a trained checkpoint: what it is, what it was trained on, how it scored, and how
to score with it using plain transformers or vLLM, without prmkit.

Why: a PRM is only useful where it can be loaded; the card's snippet is the contract, and a test runs it.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from prmkit import __version__


def _snippet(meta: dict[str, Any], path: str) -> str:
    """Python that scores steps with plain transformers, reading the checkpoint exactly as prmkit does."""
    head, sep = meta.get("head"), meta.get("step_separator", "\n")
    if meta.get("format") != "prmkit" or head not in ("token_classification", "lm") or meta.get("chat_template"):
        return ""
    model_cls = "AutoModelForTokenClassification" if head == "token_classification" else "AutoModelForCausalLM"
    if head == "token_classification":
        read = "    return torch.softmax(logits[ends, :2].float(), dim=-1)[:, 1].tolist()  # P(good step)"
    else:
        good, bad = json.dumps(meta.get("good_token", "+")), json.dumps(meta.get("bad_token", "-"))
        read = (
            f"    pair = [tok.convert_tokens_to_ids(tok.tokenize({good})[0]), "
            f"tok.convert_tokens_to_ids(tok.tokenize({bad})[0])]\n"
            "    return torch.softmax(logits[ends][:, pair].float(), dim=-1)[:, 0].tolist()  # P(good step)"
        )
    return f"""```python
import torch
from transformers import AutoTokenizer, {model_cls}

path = {json.dumps(path)}
tok = AutoTokenizer.from_pretrained(path)
model = {model_cls}.from_pretrained(path).eval()
sep = tok({json.dumps(sep)}, add_special_tokens=False)["input_ids"]


def step_scores(problem: str, steps: list[str]) -> list[float]:
    ids, ends = tok(problem + "\\n")["input_ids"], []  # the tokenizer's specials, then the problem and a newline
    for step in steps:
        ids = ids + tok(step, add_special_tokens=False)["input_ids"] + sep
        ends.append(len(ids) - 1)  # a step's score is read at the last token of its separator
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0]
{read}
```"""


def model_card(recipe: Any, meta: dict[str, Any], metrics: dict[str, Any], path: str) -> str:
    """README.md for the final checkpoint at `path` (the folder users will load)."""
    init = recipe.init.model if recipe.init.model is not None else "a tiny model made from scratch (prmkit.models.tiny)"
    ev = metrics.get("eval") or {}
    data = metrics.get("data") or {}
    train = metrics.get("train") or {}
    shown = {k: ev[k] for k in ("first_error_f1", "step_f1", "step_accuracy", "outcome_accuracy", "loss") if k in ev}
    lines = [
        "---",
        "library_name: transformers",
        "tags: [process-reward-model, prmkit]",
        *(f"base_model: {recipe.init.model}" for _ in [0] if recipe.init.model is not None),
        "---",
        "",
        f"# {'A process reward model' if recipe.objective != 'sft' else 'A policy'} trained with prmkit",
        "",
        f"- Objective: `{recipe.objective}`; format `{meta.get('format')}`, "
        f"head `{meta.get('head') or 'the LM itself'}`, step separator "
        f"{json.dumps(meta.get('step_separator', chr(10)))}.",
        f"- Base model: {init}.",
        f"- Data: `{recipe.data.path}`, {data.get('records', '?')} records, {data.get('labels', '?')} step labels"
        + (
            f" ({data.get('dropped_labels')} past max_length {recipe.max_length}, dropped and counted)"
            if data.get("dropped_labels")
            else ""
        )
        + ".",
        f"- Training: {train.get('steps')} steps, learning rate {recipe.training.learning_rate}, seed {recipe.seed}; "
        f"prmkit {__version__}.",
    ]
    if shown:
        lines.append(
            "- Held-out evaluation: "
            + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in shown.items())
            + "."
        )
    snippet = _snippet(meta, path)
    served = meta.get("format") == "prmkit" and meta.get("head") in ("token_classification", "lm")
    lines += [
        "",
        "## Scoring steps",
        "",
        "With prmkit: `prmkit score RECIPE` with `prm: {model: <this folder>}` "
        "(`prmkit_prm.json` here tells it the format)"
        + ("; `prm.engine: vllm` runs it on vLLM's pooling runner." if served else "; the hf engine runs it."),
        "",
        "As step rewards in Python (an RL reward function): `from prmkit.score import StepScorer; "
        'StepScorer("<this folder>").score(problem, steps)` gives one score in [0, 1] per step.',
    ]
    if snippet:
        lines += ["", "With plain transformers (what prmkit computes; a test checks they agree):", "", snippet]
        if meta.get("head") == "token_classification":
            lines += [
                "",
                'With vLLM: `LLM(model=path, runner="pooling")`, then `llm.encode([{"prompt_token_ids": '
                'ids}], pooling_task="token_classify")` gives the per-token logits; read them at `ends` as above.',
            ]
    else:
        lines += [
            "",
            "This objective reads scores from the language model's own log-likelihoods; prmkit's format "
            f"`{meta.get('format')}` computes them (see prmkit/formats/).",
        ]
    lines += [
        "",
        "## prmkit_prm.json",
        "",
        "```json",
        json.dumps(meta, indent=2),
        "```",
        "",
        "## Recipe",
        "",
        "```yaml",
        yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False).rstrip(),
        "```",
    ]
    return "\n".join(lines) + "\n"
