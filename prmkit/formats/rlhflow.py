"""RLHFlow (Llama3.1-8B-PRM-*): one chat turn per step. User turn 1 = problem + " " + step 1, then an
assistant turn "+", then user = step 2, assistant "+", ... Step i's score is P("+") against "-" (softmax over
the two logits) at the position that predicts the assistant's "+" after step i.

As RLHFlow/RLHF-Reward-Modeling `math-rm/prm_evaluate.py` (and search-and-learn's batched variant): the whole
conversation is rendered with the chat template and scored in ONE pass; the logits are read at the token just
before each assistant "+" (upstream reads position -3 of each prefix, i.e. the same token).

Two decision rules (`decision`): "pair" (the default, and what the shipped recipes use): the score is P("+")
against "-" only, as RLHFlow's prm_evaluate.py and search-and-learn read it, so a threshold of 0.5 flags a step
whose "-" logit beats its "+" logit. "greedy": the reference's error rule on the full vocabulary: the step is an
error when the most likely next token is not "+". Its score is P("+") over the whole vocabulary when "+" is that
token (at least 0.5 then only if it holds half the mass, so the score is clamped to at least 0.5), else the same
P("+") clamped below 0.5: a threshold of 0.5 reproduces the rule and the scores still rank solutions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prmkit.errors import ModelError, RecipeError
from prmkit.formats.base import EncodedSteps
from prmkit.formats.prmkit_format import single_token_id
from prmkit.formats.text_anchors import encode_anchored

_SENTINEL = "\ue000"  # a private-use character: marks each assistant answer while rendering


def pair_softmax(output: Any, positions: list[int], label_ids: tuple[int, int] | None, name: str) -> list[float]:
    """P(good) = softmax([logit(good), logit(bad)])[0] at each position of one sequence's LM logits."""
    import torch

    if label_ids is None:
        raise ModelError(f"{name} format: call encode with the tokenizer before step_scores")
    logits = torch.as_tensor(output)[positions].float()
    return torch.softmax(logits[:, list(label_ids)], dim=-1)[:, 0].tolist()


@dataclass
class RLHFlowFormat:
    good_token: str = "+"
    bad_token: str = "-"
    problem_separator: str = " "
    """Between the problem and the first step in the first user turn (RLHFlow: " "; ProcessBench's eval: "\\n\\n")."""
    decision: str = "pair"
    """pair: P(+) against P(-); greedy: an error when the full-vocabulary argmax is not "+" (module docstring)."""
    name: str = field(default="rlhflow", init=False)
    head: str = field(default="lm", init=False)
    _label_ids: tuple[int, int] | None = field(default=None, repr=False, compare=False)

    def render(self, tokenizer: Any, problem: str, steps: list[str]) -> tuple[str, list[int]]:
        """The conversation text and the character index where each assistant "+" starts."""
        if not getattr(tokenizer, "chat_template", None):
            raise ModelError("rlhflow format: the tokenizer has no chat template")
        messages = []
        for k, step in enumerate(steps):
            text = problem + self.problem_separator + step if k == 0 else step
            messages += [{"role": "user", "content": text}, {"role": "assistant", "content": _SENTINEL}]
        rendered = tokenizer.apply_chat_template(messages, tokenize=False)
        pieces = rendered.split(_SENTINEL)
        if len(pieces) != len(steps) + 1:
            raise ModelError("rlhflow format: the chat template did not keep each assistant turn verbatim")
        text, anchors = pieces[0], []
        for piece in pieces[1:]:
            anchors.append(len(text))
            text += self.good_token + piece
        return text, anchors

    def encode(self, tokenizer: Any, problem: str, steps: list[str], max_length: int | None = None) -> EncodedSteps:
        self._label_ids = (
            single_token_id(tokenizer, self.good_token, "good_token"),
            single_token_id(tokenizer, self.bad_token, "bad_token"),
        )
        if not steps:
            return EncodedSteps([], [])
        text, anchors = self.render(tokenizer, problem, steps)
        encoded, tokens = encode_anchored(tokenizer, text, anchors, max_length=None, shift=-1)
        for t in tokens:
            if encoded.input_ids[t] != self._label_ids[0]:
                raise ModelError(
                    f"rlhflow format: the assistant's {self.good_token!r} merged with its neighbours "
                    "when tokenized; the scores would be read at the wrong place"
                )
        if max_length is not None and encoded.step_positions and encoded.step_positions[-1] >= max_length:
            kept = sum(p < max_length for p in encoded.step_positions)
            cut = encoded.step_positions[kept - 1] + 1 if kept else max_length
            return EncodedSteps(encoded.input_ids[:cut], encoded.step_positions[:kept], len(steps) - kept)
        return encoded

    def __post_init__(self) -> None:
        if self.decision not in DECISIONS:
            raise RecipeError(f"rlhflow format: decision must be one of {', '.join(DECISIONS)}, got {self.decision!r}")

    def step_scores(self, output: Any, positions: list[int]) -> list[float]:
        if self.decision == "greedy":
            return greedy_plus(output, positions, self._label_ids, self.name)
        return pair_softmax(output, positions, self._label_ids, self.name)


DECISIONS = ("pair", "greedy")
_BELOW = 0.5 - 1e-6


def greedy_plus(output: Any, positions: list[int], label_ids: tuple[int, int] | None, name: str) -> list[float]:
    """P(good) over the full vocabulary, at least 0.5 exactly when good is the argmax and below 0.5 otherwise."""
    import torch

    if label_ids is None:
        raise ModelError(f"{name} format: call encode with the tokenizer before step_scores")
    logits = torch.as_tensor(output)[positions].float()
    p_good = torch.softmax(logits, dim=-1)[:, label_ids[0]]
    top = logits.argmax(dim=-1)
    return [max(0.5, float(p)) if int(t) == label_ids[0] else min(_BELOW, float(p)) for p, t in zip(p_good, top)]
