"""The PRM format protocol: one object knows both directions for a PRM family.

Render problem + steps into token ids with the position whose output scores each step, and read the
step scores out of the model's output at those positions. Training and scoring both go through the
same `encode`, so they cannot tokenize differently (a mismatch silently costs several F1 points).

Head kinds:
- "token_classification": a per-token classifier (AutoModelForTokenClassification, or Qwen2.5-Math-PRM's
  2-class head); score = softmax(logits[pos])[1] (or sigmoid of a single logit).
- "lm": the language-model head read at two tokens (`+` good / `-` bad, as Math-Shepherd and RLHFlow);
  score = softmax over the two logits at pos, P(+).
- "value": a scalar value head (Skywork-o1-PRM style); score = sigmoid(value[pos]).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

HeadKind = Literal["token_classification", "lm", "value", "implicit", "likelihood"]
"""How a format reads step scores: a 2-class head, the LM's +/- logits, a value head, or a log-ratio / likelihood
of the LM itself."""

METADATA_FILE = "prmkit_prm.json"
"""Written into every checkpoint prmkit trains, so later stages tokenize exactly as training did."""


_PIECES: weakref.WeakKeyDictionary[Any, dict[tuple[str, bool, int], tuple[int, ...]]] = weakref.WeakKeyDictionary()
_PIECES_PER_TOKENIZER = 1 << 16


def piece_ids(tokenizer: Any, text: str, add_special_tokens: bool = False) -> list[int]:
    """`tokenizer(text)["input_ids"]`, remembered per tokenizer (and its vocabulary size, so added tokens start
    afresh): formats tokenize each step on its own, and search re-renders the same steps of every candidate each
    round (12,570 tokenizer calls in one 50-problem beam search, 16% of its wall time, before this)."""
    try:
        memo = _PIECES.setdefault(tokenizer, {})
    except TypeError:  # a tokenizer that takes no weak reference: tokenize every time
        return list(tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"])
    key = (text, add_special_tokens, len(tokenizer))
    ids = memo.get(key)
    if ids is None:
        if len(memo) >= _PIECES_PER_TOKENIZER:
            memo.clear()
        ids = memo[key] = tuple(tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"])
    return list(ids)


@dataclass
class EncodedSteps:
    """Token ids of one rendered solution and, per step, the index of the token whose output scores it."""

    input_ids: list[int]
    step_positions: list[int]
    dropped_steps: int = 0
    """Steps cut off because the sequence hit the length limit (cut at a step boundary, never silently)."""
    extra: dict[str, Any] = field(default_factory=dict)


class PRMFormat(Protocol):
    name: str
    head: str
    """One of HeadKind."""

    def encode(self, tokenizer: Any, problem: str, steps: list[str], max_length: int | None = None) -> EncodedSteps:
        """Render problem + steps to token ids; steps past `max_length` are dropped whole and counted."""

    def step_scores(self, output: Any, positions: list[int]) -> list[float]:
        """Per-step scores in [0, 1] from one sequence's model output (logits [seq, C or V], or values [seq])."""
