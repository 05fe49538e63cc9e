"""`objective: implicit`: an implicit PRM (PRIME, "Free process rewards") trained from outcome labels only.

The model is a causal LM; a frozen reference (the init model unless the recipe names one) anchors it.
With beta the recipe's scale, the sequence reward is beta * sum over response tokens of
(log pi - log pi_ref). Step i's reward r_i is the same sum over its own tokens (step text + separator) and
its score sigmoid(r_1 + ... + r_i): the estimated outcome log-odds from that prefix. Rendering is prmkit's
format (lm head), so `score` reads it the same way.

Two targets (`implicit.target`): `outcome` is PRIME's loss, BCE(sigmoid(sequence reward), outcome);
`steps` is BCE(sigmoid(r_1 + ... + r_i), label_i) summed over every labelled step, which uses annotate's
step labels. Why `steps`: an outcome loss pushes every token of a wrong solution down, the correct steps
before its first error included; measured on the quickstart world, outcome training made the base model's
own likelihood a worse verifier (within-problem AUC 0.90 before, 0.84 after).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prmkit.errors import DataError
from prmkit.formats import PrmkitFormat
from prmkit.formats.prmkit_format import prompt_ids
from prmkit.records import Record
from prmkit.train.metrics import prm_metrics
from prmkit.train.objectives import OBJECTIVES, Encoded, Objective
from prmkit.train.objectives.prm import IGNORE, check_labels


def outcome_of(record: Record, source: str) -> float:
    """The outcome label: `correct`, else the last step label (prefix labels end in the outcome)."""
    if record.correct is not None:
        return float(bool(record.correct))
    if record.labels:
        if len(record.labels) != len(record.steps):
            raise DataError(
                f"{source}: record {record.id!r} has {len(record.labels)} labels for "
                f"{len(record.steps)} steps; there must be one label per step"
            )
        return float(record.labels[-1])
    raise DataError(
        f"{source}: record {record.id!r} has neither 'correct' nor step labels (an implicit PRM trains on outcomes)"
    )


def token_logprobs(model: Any, batch: dict[str, Any]) -> Any:
    """log p(token t | tokens < t) for t >= 1, shape [batch, seq-1]."""
    import torch

    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1].float()
    return torch.gather(torch.log_softmax(logits, -1), 2, batch["input_ids"][:, 1:].unsqueeze(-1)).squeeze(-1)


class ImplicitObjective(Objective):
    name = "implicit"
    model_kind = "causal_lm"

    def __init__(self, recipe: Any) -> None:
        super().__init__(recipe)
        p = recipe.prm
        # Same rendering as the lm-head prmkit format; the head only matters for reading scores, not here.
        self.format = PrmkitFormat(
            head="token_classification", step_separator=p.step_separator, chat_template=p.chat_template
        )
        self.beta = recipe.implicit.beta
        self.target = recipe.implicit.target
        self.reference: Any = None
        self.reference_name = ""

    def setup(self, model: Any, tokenizer: Any, init_path: str) -> None:
        """Load the frozen reference: the recipe's reference_model, else the init checkpoint."""
        from transformers import AutoModelForCausalLM

        from prmkit.models.loading import resolve_model

        super().setup(model, tokenizer, init_path)
        name = self.recipe.implicit.reference_model or init_path
        source = resolve_model(name)
        self.reference_name = str(Path(source).resolve()) if Path(source).is_dir() else source
        self.reference = AutoModelForCausalLM.from_pretrained(
            source, dtype=next(model.parameters()).dtype, trust_remote_code=self.recipe.init.trust_remote_code
        ).eval()
        for param in self.reference.parameters():
            param.requires_grad_(False)

    def encode(self, records: list[Record], tokenizer: Any, source: str) -> Encoded:
        return self._encode(records, tokenizer, source, need_step_labels=self.target == "steps")

    def _encode(self, records: list[Record], tokenizer: Any, source: str, need_step_labels: bool) -> Encoded:
        """Features per record: ids, the step of each token, the outcome and (when labelled) per-token targets,
        each step's label on its last token and IGNORE elsewhere."""
        out = Encoded()
        st = out.stats
        for rec in records:
            outcome = outcome_of(rec, source)
            step_labels = check_labels(rec, source) if need_step_labels else None
            st.records += 1
            enc = self.format.encode(tokenizer, rec.problem, rec.steps, self.recipe.max_length)
            st.dropped_labels += enc.dropped_steps
            st.truncated_records += enc.dropped_steps > 0
            if not enc.step_positions:
                st.skipped_records += 1
                continue
            start = len(prompt_ids(tokenizer, rec.problem, self.format.chat_template))
            # step id per token: 0 for the prompt, k+1 for step k's tokens (text and separator)
            step_ids = [0] * len(enc.input_ids)
            prev = start
            for k, pos in enumerate(enc.step_positions):
                for t in range(prev, pos + 1):
                    step_ids[t] = k + 1
                prev = pos + 1
            feature: dict[str, Any] = {"input_ids": enc.input_ids, "step_ids": step_ids, "outcome": outcome}
            if step_labels is not None:
                targets = [IGNORE] * len(enc.input_ids)
                for pos, label in zip(enc.step_positions, step_labels):
                    targets[pos] = float(label)
                feature["targets"] = targets
                st.labels += len(enc.step_positions)
            else:
                st.labels += 1
            st.tokens += len(enc.input_ids)
            out.features.append(feature)
            out.kept.append(st.records - 1)
        st.examples = len(out.features)
        return out

    def token_rewards(self, model: Any, batch: dict[str, Any]) -> Any:
        """beta * (log pi - log pi_ref) per predicted token, zero outside the response; shape [batch, seq-1]."""
        import torch

        if self.reference.device != batch["input_ids"].device:
            self.reference.to(batch["input_ids"].device)
        logp = token_logprobs(model, batch)
        with torch.no_grad():
            ref = token_logprobs(self.reference, batch)
        response = (batch["step_ids"][:, 1:] > 0).float()
        return self.beta * (logp - ref) * response

    def compute_loss(self, model: Any, batch: dict[str, Any]) -> Any:
        import torch.nn.functional as F

        rewards = self.token_rewards(model, batch)
        if self.target == "steps":
            # reward index j predicts token j + 1, so the cumulative reward up to token t sits at index t - 1
            cumulative = rewards.cumsum(-1)
            targets = batch["targets"][:, 1:]
            keep = targets != IGNORE
            return F.binary_cross_entropy_with_logits(cumulative[keep], targets[keep])
        return F.binary_cross_entropy_with_logits(rewards.sum(-1), batch["outcome"])

    def step_scores(self, model: Any, batch: dict[str, Any]) -> list[list[float]]:
        """sigmoid of the cumulative step rewards per sequence."""
        import torch

        rewards = self.token_rewards(model, batch)
        ids = batch["step_ids"][:, 1:]
        out = []
        for row in range(ids.shape[0]):
            n = int(ids[row].max())
            per_step = torch.zeros(n + 1, device=rewards.device).index_add_(0, ids[row], rewards[row])[1:]
            out.append(torch.sigmoid(per_step.cumsum(0)).tolist())
        return out

    def evaluate(self, model: Any, tokenizer: Any, records: list[Record], batch_size: int) -> dict[str, Any]:
        """Outcome accuracy of the last cumulative score; step metrics too where records carry step labels."""
        import torch

        from prmkit.train.collate import PadCollator

        labelled = [r for r in records if r.labels is not None and len(r.labels) == len(r.steps)]
        encoded = self._encode(records, tokenizer, "eval data", need_step_labels=False)
        feats = encoded.features
        collate = PadCollator(tokenizer.pad_token_id)
        device = next(model.parameters()).device
        scores: list[list[float]] = []
        was_training = model.training
        model.eval()
        with torch.no_grad():
            for b in range(0, len(feats), batch_size):
                batch = {k: v.to(device) for k, v in collate(feats[b : b + batch_size]).items()}
                scores += self.step_scores(model, batch)
        model.train(was_training)
        hits = [(s[-1] >= self.recipe.eval.threshold) == (f["outcome"] >= 0.5) for s, f in zip(scores, feats)]
        metrics: dict[str, Any] = {"outcome_accuracy": sum(hits) / len(hits) if hits else None}
        if labelled and len(labelled) == len(records):
            kept = [records[i] for i in encoded.kept]
            full = [(s, r.labels) for s, r in zip(scores, kept) if r.labels is not None and len(s) == len(r.labels)]
            threshold = self.recipe.eval.threshold
            metrics.update(prm_metrics([s for s, _ in full], [labels for _, labels in full], threshold))
        return metrics

    def metadata(self) -> dict[str, Any]:
        f = self.format
        return {
            "format": "implicit",
            "objective": "implicit",
            "head": None,
            "step_separator": f.step_separator,
            "good_token": None,
            "bad_token": None,
            "chat_template": f.chat_template,
            "label_type": "hard",
            "last_step_only": False,
            "implicit": {"beta": self.beta, "reference_model": self.reference_name, "target": self.target},
        }


OBJECTIVES.register("implicit")(ImplicitObjective)
