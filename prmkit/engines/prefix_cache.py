"""A bounded cache of PRM prefixes: the KV cache and the score rows of token prefixes scored before.

Why: step-level search re-scores every candidate from its first token each round, though all but its newest
step was scored the round before (the parent), and prefills each candidate's prompt again though the parent's
prompt was prefilled the round before. A causal model's KV cache and per-token outputs at positions < P depend
on the first P tokens only, so a child whose token ids start with a cached prefix needs a forward pass over its
new tokens alone. The PRM scorer and the hf sampler both keep one. An entry is looked up by exact token ids (a
tokenizer that merges across the step boundary simply misses), kept least-recently-used first out, and bounded
in bytes.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

_HASH_BASE = np.uint64(0x9E3779B97F4A7C15)


def prefix_hashes(ids: list[int]) -> list[int]:
    """h[n - 1] identifies ids[:n] for every n at once (sum of (id + 1) * B**j mod 2**64, wrapping numpy sums):
    the longest cached prefix of a prompt is then one dict lookup per length, with no tuple built per length."""
    if not ids:
        return []
    with np.errstate(over="ignore"):
        powers = np.cumprod(np.full(len(ids), _HASH_BASE, dtype=np.uint64))
        hashed: list[int] = np.cumsum((np.asarray(ids, dtype=np.uint64) + np.uint64(1)) * powers).tolist()
    return hashed


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
    """Token prefix -> CachedPrefix, at most `max_bytes` in all (least recently used evicted first).

    `any_length`: also index entries by a hash of their ids, for `longest_prefix` (a prompt's parent may end at any
    token); without it only `longest` at given cut points (the PRM's step ends) is served, and puts hash nothing."""

    def __init__(self, max_bytes: int, any_length: bool = False) -> None:
        self.max_bytes = max_bytes
        self.any_length = any_length
        self.bytes = 0
        self._entries: OrderedDict[tuple[int, ...], CachedPrefix] = OrderedDict()
        self._by_hash: dict[int, tuple[int, ...]] = {}
        self._hash_of: dict[tuple[int, ...], int] = {}
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

    def longest_prefix(self, ids: list[int], hashes: list[int] | None = None) -> CachedPrefix | None:
        """The longest cached proper prefix of `ids` at any length (at least one token is left to run), or None."""
        assert self.any_length, "longest_prefix needs PrefixCache(..., any_length=True)"
        hashes = prefix_hashes(ids) if hashes is None else hashes
        for cut in range(len(ids) - 1, 0, -1):
            key = self._by_hash.get(hashes[cut - 1])
            if key is not None and len(key) == cut and key == tuple(ids[:cut]):
                self._entries.move_to_end(key)
                self.hits += 1
                return self._entries[key]
        self.misses += 1
        return None

    def holds(self, ids: list[int], length: int) -> bool:
        return tuple(ids[:length]) in self._entries

    def put(self, ids: list[int], entry: CachedPrefix, hashes: list[int] | None = None) -> None:
        """Keep `entry` for ids[:entry.length]; an entry larger than the whole bound is not kept."""
        key = tuple(ids[: entry.length])
        size = entry.nbytes
        if size > self.max_bytes or key in self._entries:
            return
        self._entries[key] = entry
        if self.any_length:
            h = (hashes if hashes is not None else prefix_hashes(list(key)))[entry.length - 1]
            self._by_hash[h] = key
            self._hash_of[key] = h
        self.bytes += size
        while self.bytes > self.max_bytes:
            old_key, old = self._entries.popitem(last=False)
            old_hash = self._hash_of.pop(old_key, None)
            if old_hash is not None and self._by_hash.get(old_hash) == old_key:
                del self._by_hash[old_hash]
            self.bytes -= old.nbytes
            self.evictions += 1


def fill_past(cache: Any, hits: list[CachedPrefix | None], cuts: list[int], past: int, device: Any) -> None:
    """Put each row's cached KV (its first `cuts[r]` tokens) in `cache`, right-aligned in a [rows, heads, past, dim]
    block per layer built on `device` (zeros where a row has less or none: the attention mask hides them)."""
    known = next(x for x in hits if x is not None)
    for layer in range(len(known.layers)):
        k0, v0 = known.layers[layer]
        keys = torch.zeros((len(hits), k0.shape[0], past, k0.shape[2]), dtype=k0.dtype, device=device)
        values = torch.zeros((len(hits), v0.shape[0], past, v0.shape[2]), dtype=v0.dtype, device=device)
        for r, (x, c) in enumerate(zip(hits, cuts)):
            if x is not None and c:
                k, v = x.layers[layer]
                keys[r, :, past - c :] = k[:, :c].to(device, non_blocking=True)
                values[r, :, past - c :] = v[:, :c].to(device, non_blocking=True)
        cache.update(keys, values, layer)
