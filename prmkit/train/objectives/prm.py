"""`objective: prm`: a discriminative PRM trained on per-step labels (hard 0/1 or soft MC rates).

The label of step i sits on the last token of its separator (the position `PrmkitFormat.encode`
returns); every other position is ignored. The loss is binary cross-entropy on the float target, so a
soft label 0.25 is trained towards 0.25 (never rounded): for the 2-class head the soft cross-entropy
between [1-y, y] and softmax of the two logits; for the lm head the same over the [good, bad] token
logits (target [y, 1-y]).
"""

from __future__ import annotations

from typing import Any

from prmkit.errors import DataError
from prmkit.formats import PrmkitFormat
from prmkit.records import Record
from prmkit.train.metrics import prm_metrics
from prmkit.train.objectives import OBJECTIVES, Encoded, Objective

IGNORE = -100.0


def check_labels(record: Record, source: str) -> list[float]:
    """The record's labels, one per step, each in [0, 1]; DataError naming the record and file otherwise."""
    if record.labels is None:
        raise DataError(f"{source}: record {record.id!r} has no step labels (a PRM trains on labelled steps)")
    if len(record.labels) != len(record.steps):
        raise DataError(
            f"{source}: record {record.id!r} has {len(record.labels)} labels for {len(record.steps)} steps; "
            "there must be one label per step"
        )
    for i, lab in enumerate(record.labels):
        if not 0.0 <= lab <= 1.0:
            raise DataError(f"{source}: record {record.id!r} step {i} label {lab!r} is outside [0, 1]")
    return list(record.labels)


def soft_bce(pair_logits: Any, targets: Any) -> Any:
    """Mean over rows of -(y log p_good + (1-y) log p_bad), p = softmax of [bad, good] logits (float targets)."""
    import torch

    logp = torch.log_softmax(pair_logits.float(), dim=-1)
    return -(targets * logp[:, 1] + (1.0 - targets) * logp[:, 0]).mean()


def selected_positions(targets: Any) -> tuple[Any, Any]:
    """(batch rows, positions) of every supervised token."""
    rows, cols = (targets != IGNORE).nonzero(as_tuple=True)
    return rows, cols


def forward_logits_at(model: Any, batch: dict[str, Any], rows: Any, cols: Any, keep_logits: bool) -> Any:
    """Logits at the supervised positions only, in (row, position) order. For a causal LM the vocabulary
    projection runs on those positions alone (the backbone's hidden states, then the LM head on the
    selected rows): far less memory, and the same on every transformers version (a 2-D `logits_to_keep`
    mask is not)."""
    kwargs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    if keep_logits:
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        hidden = base.get_decoder()(**kwargs).last_hidden_state
        return base.get_output_embeddings()(hidden[rows, cols])
    return model(**kwargs).logits[rows, cols]


def accepts_logits_to_keep(model: Any) -> bool:
    """True for causal LMs whose forward takes `logits_to_keep` (peft-wrapped ones included)."""
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "logits_to_keep" in inspect.signature(base.forward).parameters


class PrmObjective(Objective):
    name = "prm"

    def __init__(self, recipe: Any) -> None:
        super().__init__(recipe)
        p = recipe.prm
        self.model_kind = "token_classification" if p.head == "token_classification" else "causal_lm"
        self.format = PrmkitFormat(
            head=p.head,
            step_separator=p.step_separator,
            good_token=p.good_token,
            bad_token=p.bad_token,
            chat_template=p.chat_template,
        )
        self.label_type = p.label_type

    def setup(self, model: Any, tokenizer: Any, init_path: str) -> None:
        super().setup(model, tokenizer, init_path)
        self.keep_logits = self.format.head == "lm" and accepts_logits_to_keep(model)
        if self.format.head == "lm":
            self.good_id, self.bad_id = self.format.label_token_ids(tokenizer)

    def encode(self, records: list[Record], tokenizer: Any, source: str) -> Encoded:
        out = Encoded()
        st = out.stats
        last_only = self.recipe.prm.last_step_only
        soft = False
        for rec in records:
            labels = check_labels(rec, source)
            soft |= any(0.0 < lab < 1.0 for lab in labels)
            st.records += 1
            enc = self.format.encode(tokenizer, rec.problem, rec.steps, self.recipe.max_length)
            targets = [IGNORE] * len(enc.input_ids)
            if last_only:
                kept = enc.step_positions[-1:] if enc.dropped_steps == 0 else []
                for pos in kept:
                    targets[pos] = labels[-1]
                st.dropped_labels += 1 - len(kept) if labels else 0
            else:
                for pos, lab in zip(enc.step_positions, labels):
                    targets[pos] = lab
                st.dropped_labels += enc.dropped_steps
                kept = enc.step_positions
            st.truncated_records += enc.dropped_steps > 0
            if not kept:
                st.skipped_records += 1
                continue
            st.labels += len(kept)
            st.tokens += len(enc.input_ids)
            out.features.append({"input_ids": enc.input_ids, "targets": targets})
            out.kept.append(st.records - 1)
        st.examples = len(out.features)
        if self.label_type == "auto":
            self.label_type = "soft" if soft else "hard"
        return out

    def pair_logits(self, logits: Any) -> Any:
        """[bad, good] logits per row, whatever the head, so one loss serves both."""
        if self.format.head == "token_classification":
            return logits[:, :2]
        return logits[:, [self.bad_id, self.good_id]]

    def compute_loss(self, model: Any, batch: dict[str, Any]) -> Any:
        targets = batch["targets"]
        rows, cols = selected_positions(targets)
        logits = forward_logits_at(model, batch, rows, cols, self.keep_logits)
        return soft_bce(self.pair_logits(logits), targets[rows, cols])

    def score_batch(self, model: Any, batch: dict[str, Any]) -> list[list[float]]:
        """P(good step) per supervised position, grouped per sequence."""
        import torch

        rows, cols = selected_positions(batch["targets"])
        logits = forward_logits_at(model, batch, rows, cols, self.keep_logits)
        probs = torch.softmax(self.pair_logits(logits).float(), dim=-1)[:, 1].tolist()
        out: list[list[float]] = [[] for _ in range(batch["input_ids"].shape[0])]
        for r, p in zip(rows.tolist(), probs):
            out[r].append(p)
        return out

    def evaluate(self, model: Any, tokenizer: Any, records: list[Record], batch_size: int) -> dict[str, Any]:
        encoded = self.encode_for_eval(records, tokenizer)
        scores, labels = score_examples(self, model, encoded, batch_size, tokenizer.pad_token_id)
        metrics = prm_metrics(scores, labels, self.recipe.eval.threshold)
        if self.recipe.prm.last_step_only:  # an ORM: only the outcome metrics mean anything
            metrics = {k: metrics[k] for k in ("step_accuracy", "step_f1", "steps_scored")}
            metrics = {"outcome_accuracy": metrics.pop("step_accuracy"), **metrics}
        return metrics

    def encode_for_eval(self, records: list[Record], tokenizer: Any) -> list[tuple[dict[str, Any], list[float]]]:
        """Features and the labels of the steps that fit, for scoring held-out records."""
        saved = self.label_type
        enc = self.encode(records, tokenizer, "eval data")
        self.label_type = saved
        return [(f, [t for t in f["targets"] if t != IGNORE]) for f in enc.features]

    def metadata(self) -> dict[str, Any]:
        f = self.format
        return {
            "format": "prmkit",
            "objective": "prm",
            "head": f.head,
            "step_separator": f.step_separator,
            "good_token": f.good_token,
            "bad_token": f.bad_token,
            "chat_template": f.chat_template,
            "label_type": "hard" if self.label_type == "auto" else self.label_type,
            "last_step_only": self.recipe.prm.last_step_only,
            "implicit": None,
        }


def score_examples(
    objective: Any, model: Any, encoded: list[tuple[dict[str, Any], list[float]]], batch_size: int, pad_id: int
) -> tuple[list[list[float]], list[list[float]]]:
    """Scores of held-out examples in length-sorted batches (eval mode, no gradient)."""
    import torch

    from prmkit.train.collate import PadCollator

    collate = PadCollator(pad_id)
    device = next(model.parameters()).device
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]["input_ids"]))
    scores: list[list[float]] = [[] for _ in encoded]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for b in range(0, len(order), batch_size):
            idx = order[b : b + batch_size]
            batch = {k: v.to(device) for k, v in collate([encoded[i][0] for i in idx]).items()}
            for i, row in zip(idx, objective.score_batch(model, batch)):
                scores[i] = row
    model.train(was_training)
    return scores, [labels for _, labels in encoded]


OBJECTIVES.register("prm")(PrmObjective)
