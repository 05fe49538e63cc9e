"""A bounded cache of PRM prefixes: the KV cache and the score rows of token prefixes scored before.

Why: step-level search re-scores every candidate from its first token each round, though all but its newest
step was scored the round before (the parent). A causal PRM's KV cache and per-token outputs at positions
< P depend on the first P tokens only, so a child whose token ids start with a cached prefix needs a forward
pass over its new tokens alone. An entry is looked up by exact token ids (a tokenizer that merges across the
step boundary simply misses), kept least-recently-used first out, and bounded in bytes.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch


@dataclass
class CachedPrefix:
    """The first `length` tokens of a scored sequence: per layer (key, value) [kv_heads, kv_length, head_dim]
    and either the output row at each step position inside the prefix (`rows`: heads read at step positions) or
    every token's output (`dense`, [length]: heads whose step scores sum per-token values). A dense head keeps the
    KV of one token fewer (kv_length = length - 1): re-running the last token gives the next token's logits."""

    length: int
    layers: list[tuple[torch.Tensor, torch.Tensor]]
    rows: dict[int, torch.Tensor]
    dense: torch.Tensor | None = None

    @property
    def kv_length(self) -> int:
        return int(self.layers[0][0].shape[1]) if self.layers else 0

    def covers(self, step_positions: list[int]) -> bool:
        """Whether every step score inside the prefix can be read from the entry."""
        return self.dense is not None or all(p in self.rows for p in step_positions if p < self.length)

    @property
    def nbytes(self) -> int:
        kv = sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in self.layers)
        dense = self.dense.numel() * self.dense.element_size() if self.dense is not None else 0
        return kv + dense + sum(r.numel() * r.element_size() for r in self.rows.values())


class PrefixCache:
    """Token prefix -> CachedPrefix, at most `max_bytes` in all (least recently used evicted first)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[tuple[int, ...], CachedPrefix] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._entries)

    def longest(self, ids: list[int], cuts: list[int]) -> CachedPrefix | None:
        """The longest cached prefix of `ids` among the lengths `cuts` (e.g. each step's end), or None."""
        for cut in sorted(set(cuts), reverse=True):
            if 0 < cut < len(ids):
                entry = self._entries.get(tuple(ids[:cut]))
                if entry is not None:
                    self._entries.move_to_end(tuple(ids[:cut]))
                    self.hits += 1
                    return entry
        self.misses += 1
        return None

    def put(self, ids: list[int], entry: CachedPrefix) -> None:
        """Keep `entry` for ids[:entry.length]; an entry larger than the whole bound is not kept."""
        key = tuple(ids[: entry.length])
        size = entry.nbytes
        if size > self.max_bytes or key in self._entries:
            return
        self._entries[key] = entry
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, old = self._entries.popitem(last=False)
            self.bytes -= old.nbytes
            self.evictions += 1
