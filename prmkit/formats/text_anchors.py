"""Encode a fully rendered text once and map character anchors (where each step ends) to token positions.

Public PRM families were trained on whole rendered strings (chat templates, tag strings), so their inputs
must be tokenized as one string, exactly as their reference code does; the offsets of a fast tokenizer then
say which token holds each step's anchor character.
"""

from __future__ import annotations

from typing import Any

from prmkit.errors import ModelError
from prmkit.formats.base import EncodedSteps


def token_at(offsets: list[tuple[int, int]], char: int) -> int:
    """Index of the token whose character span contains `char`."""
    for i, (start, end) in enumerate(offsets):
        if start <= char < end:
            return i
    raise ModelError(f"no token covers character {char} of the rendered text (was it stripped by the tokenizer?)")


def encode_anchored(
    tokenizer: Any,
    text: str,
    anchors: list[int],
    max_length: int | None = None,
    shift: int = 0,
    add_special_tokens: bool = False,
) -> tuple[EncodedSteps, list[int]]:
    """Token ids of `text` and, per anchor, the index of its token plus `shift` (e.g. -1: the token before).

    Returns (encoded, anchor token indices). Steps whose position would pass `max_length` are dropped whole
    (the ids are cut after the last kept position: the models are causal, later tokens change nothing).
    """
    if not getattr(tokenizer, "is_fast", False):
        raise ModelError("this PRM format needs a fast (Rust) tokenizer: it maps step ends to tokens by offsets")
    enc = tokenizer(text, add_special_tokens=add_special_tokens, return_offsets_mapping=True)
    ids, offsets = list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]
    tokens = [token_at(offsets, a) for a in anchors]
    positions = [t + shift for t in tokens]
    if max_length is not None and positions and positions[-1] >= max_length:
        kept = sum(p < max_length for p in positions)
        cut = positions[kept - 1] + 1 if kept else min(len(ids), max_length)
        return EncodedSteps(ids[:cut], positions[:kept], dropped_steps=len(positions) - kept), tokens[:kept]
    return EncodedSteps(ids, positions, dropped_steps=0), tokens
