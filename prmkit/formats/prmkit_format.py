"""prmkit's own PRM format: problem + "\n", then each step followed by the step separator.

Every piece (prompt, each step, each separator) is tokenized on its own and the ids concatenated, so a
step's score position is exactly the LAST token of its separator whatever the tokenizer merges would
otherwise do across the boundary. Training (`prmkit train`) and scoring (`prmkit score`) both call
`encode`, so they cannot tokenize differently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prmkit.errors import ModelError, RecipeError
from prmkit.formats.base import EncodedSteps, piece_ids

HEADS = ("token_classification", "lm")


def single_token_id(tokenizer: Any, text: str, role: str) -> int:
    """The id of `text` when the tokenizer keeps it as ONE token; a ModelError otherwise (the score would be wrong)."""
    ids = tokenizer.encode(text, add_special_tokens=False)
    if len(ids) != 1:
        raise ModelError(
            f"{role} {text!r} is {len(ids)} tokens for this tokenizer, not one; pick a token the tokenizer "
            "keeps whole (or add it to the tokenizer)"
        )
    return int(ids[0])


def prompt_ids(tokenizer: Any, problem: str, chat_template: bool) -> list[int]:
    """The prompt as the policy saw it when sampling: the tokenizer's own specials (BOS) then problem + "\\n".

    With `chat_template` the problem is the user turn of the tokenizer's template (which carries its own
    special tokens, so none are added on top).
    """
    if chat_template:
        if not getattr(tokenizer, "chat_template", None):
            raise ModelError("format option chat_template is on but the tokenizer has no chat template")
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": problem}], tokenize=False, add_generation_prompt=True
        )
        return piece_ids(tokenizer, text)
    return piece_ids(tokenizer, problem + "\n", add_special_tokens=True)


@dataclass
class PrmkitFormat:
    """The `prmkit` format. `head` picks how a step score is read (see prmkit.formats.base)."""

    head: str = "token_classification"
    step_separator: str = "\n"
    good_token: str = "+"
    bad_token: str = "-"
    chat_template: bool = False
    name: str = "prmkit"
    _label_ids: tuple[int, int] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise RecipeError(f"prmkit format head {self.head!r} is not allowed; allowed: {', '.join(HEADS)}")
        if not self.step_separator:
            raise RecipeError("prmkit format step_separator must be a non-empty string")
        if self.head == "lm" and self.good_token == self.bad_token:
            raise RecipeError("prmkit format good_token and bad_token must differ")

    def label_token_ids(self, tokenizer: Any) -> tuple[int, int]:
        """(good id, bad id) for the lm head; remembered so `step_scores` can read the logits."""
        self._label_ids = (
            single_token_id(tokenizer, self.good_token, "good_token"),
            single_token_id(tokenizer, self.bad_token, "bad_token"),
        )
        return self._label_ids

    def encode(self, tokenizer: Any, problem: str, steps: list[str], max_length: int | None = None) -> EncodedSteps:
        """Token ids and per-step score positions; steps that would pass `max_length` are dropped whole."""
        if self.head == "lm":
            self.label_token_ids(tokenizer)
        ids = prompt_ids(tokenizer, problem, self.chat_template)
        sep = piece_ids(tokenizer, self.step_separator)
        if not sep:
            raise ModelError(f"step separator {self.step_separator!r} tokenizes to nothing")
        positions: list[int] = []
        for k, step in enumerate(steps):
            piece = piece_ids(tokenizer, step) + sep
            if max_length is not None and len(ids) + len(piece) > max_length:
                return EncodedSteps(ids, positions, dropped_steps=len(steps) - k)
            ids += piece
            positions.append(len(ids) - 1)
        return EncodedSteps(ids, positions, dropped_steps=0)

    def step_scores(self, output: Any, positions: list[int]) -> list[float]:
        """P(good) per step from one sequence's logits [seq, 2] (token classification) or [seq, vocab] (lm)."""
        import torch

        logits = torch.as_tensor(output)[positions].float()
        if self.head == "token_classification":
            return torch.softmax(logits[:, :2], dim=-1)[:, 1].tolist()
        if self._label_ids is None:
            raise ModelError("prmkit lm-head format: call encode (or label_token_ids) with the tokenizer first")
        pair = logits[:, list(self._label_ids)]
        return torch.softmax(pair, dim=-1)[:, 0].tolist()
