"""`objective: sft`: supervised fine-tuning of a policy on solutions (loss on the solution tokens only).

The prompt is rendered exactly as `prmkit sample` renders it (same template, chat template, and the
tokenizer's own special tokens, as the samplers encode prompts), and the target is the steps joined in
the recipe's step style followed by EOS, so the policy learns to write text that `sample` splits back
into the same steps and to stop. A solution too long for max_length loses whole trailing steps (and
its EOS: it was not finished), and the dropped steps are counted.
"""

from __future__ import annotations

from typing import Any

from prmkit.errors import DataError, RecipeError
from prmkit.records import Record
from prmkit.steps import join_steps
from prmkit.train.objectives import OBJECTIVES, Encoded, Objective

IGNORE_ID = -100


class SftObjective(Objective):
    name = "sft"
    model_kind = "causal_lm"
    trains_policy = True

    def setup(self, model: Any, tokenizer: Any, init_path: str) -> None:
        super().setup(model, tokenizer, init_path)
        if tokenizer.eos_token_id is None:
            raise RecipeError("objective sft: the tokenizer has no EOS token, so the policy could never learn to stop")

    def target_ids(self, tokenizer: Any, steps: list[str], where: str) -> list[int]:
        try:
            text = join_steps(steps, self.recipe.steps.style, self.recipe.steps.tag)
        except ValueError as exc:
            raise DataError(f"{where}: {exc} (steps.style {self.recipe.steps.style!r})") from None
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    def encode(self, records: list[Record], tokenizer: Any, source: str) -> Encoded:
        out = Encoded()
        st = out.stats
        limit = self.recipe.max_length
        for rec in records:
            where = f"{source}: record {rec.id!r}"
            if not rec.steps:
                raise DataError(f"{where} has no steps to train on")
            st.records += 1
            prompt = list(tokenizer(self.recipe.prompt.render(rec, tokenizer))["input_ids"])
            target = self.target_ids(tokenizer, rec.steps, where) + [tokenizer.eos_token_id]
            kept = len(rec.steps)
            while len(prompt) + len(target) > limit and kept > 0:  # cut at a step boundary, EOS goes too
                kept -= 1
                target = self.target_ids(tokenizer, rec.steps[:kept], where) if kept else []
            if kept < len(rec.steps):
                st.truncated_records += 1
                st.dropped_labels += len(rec.steps) - kept
            if not target:
                st.skipped_records += 1
                continue
            st.labels += len(target)
            st.tokens += len(prompt) + len(target)
            out.features.append({"input_ids": prompt + target, "labels": [IGNORE_ID] * len(prompt) + target})
            out.kept.append(st.records - 1)
        st.examples = len(out.features)
        return out

    def compute_loss(self, model: Any, batch: dict[str, Any]) -> Any:
        """Mean next-token cross-entropy over the target tokens."""
        import torch.nn.functional as F

        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        labels = batch["labels"][:, 1:]
        return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE_ID)

    def evaluate(self, model: Any, tokenizer: Any, records: list[Record], batch_size: int) -> dict[str, Any]:
        """Held-out loss on the target tokens."""
        import torch

        from prmkit.train.collate import PadCollator

        feats = self.encode(records, tokenizer, "eval data").features
        collate = PadCollator(tokenizer.pad_token_id)
        device = next(model.parameters()).device
        total = count = 0.0
        was_training = model.training
        model.eval()
        with torch.no_grad():
            for b in range(0, len(feats), batch_size):
                batch = {k: v.to(device) for k, v in collate(feats[b : b + batch_size]).items()}
                n = float((batch["labels"][:, 1:] != IGNORE_ID).sum())
                total += float(self.compute_loss(model, batch)) * n
                count += n
        model.train(was_training)
        return {"eval_loss": total / count} if count else {}

    def metadata(self) -> dict[str, Any]:
        return {
            "format": None,
            "objective": "sft",
            "head": None,
            "step_separator": None,
            "good_token": None,
            "bad_token": None,
            "chat_template": self.recipe.prompt.chat_template,
            "label_type": None,
            "last_step_only": False,
            "implicit": None,
            "prompt_template": self.recipe.prompt.template,
            "step_style": self.recipe.steps.style,
            "step_tag": self.recipe.steps.tag,
        }


OBJECTIVES.register("sft")(SftObjective)
