"""The `hf` sampling back-end: batched, KV-cached decoding on transformers + torch; works on any machine.

A hand-written loop rather than `model.generate`: each prompt is prefilled once and its KV cache
copied to its n samples, finished rows leave the batch, and every sequence draws its random numbers
from a counter-based hash of (prompt seed, sample index, step), so a seeded call gives the same
completions whatever the batch size or the order in which sequences are batched; with per-prompt seeds
(`SamplingParams.prompt_seeds`) a prompt's samples do not depend on the other prompts of the call either.
"""

from __future__ import annotations

import inspect
import random
import time
from pathlib import Path
from typing import Any

import torch
from transformers import DynamicCache

from prmkit.engines.base import Completion, Progress, SamplerStats, SamplingParams, find_stop
from prmkit.engines.prefix_cache import CachedPrefix, PrefixCache, fill_past, prefix_hashes
from prmkit.errors import DataError, RecipeError
from prmkit.models.loading import load_causal_lm

_M32 = 0xFFFFFFFF


def _mul32(x: torch.Tensor, c: int) -> torch.Tensor:
    """(x * c) mod 2**32 for int64 x in [0, 2**32), in 16-bit halves so nothing overflows int64."""
    lo, hi = x & 0xFFFF, x >> 16
    return (lo * c + (((hi * c) & 0xFFFF) << 16)) & _M32


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash (lowbias32): distinct counters give independent-looking outputs."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def sequence_keys(prompt_seeds: torch.Tensor, sample_idx: torch.Tensor) -> torch.Tensor:
    """One random stream per (prompt seed, sample): the batch layout never changes which numbers a sequence gets."""
    return _mix32(_mix32(_mix32(prompt_seeds & _M32)) ^ (sample_idx & _M32))


def uniforms(keys: torch.Tensor, step: int) -> torch.Tensor:
    """One float64 in (0, 1) per sequence for this decoding step."""
    h = _mix32(keys ^ _mix32(torch.full_like(keys, (step * 0x9E3779B9) & _M32)))
    return (h.double() + 0.5) / 2.0**32


def sample_tokens(logits: torch.Tensor, params: SamplingParams, u: torch.Tensor | None) -> torch.Tensor:
    """Greedy at temperature 0; else inverse-CDF sampling from softmax(logits / T) cut to the top-p nucleus."""
    if params.greedy or u is None:
        return logits.argmax(-1)
    probs = torch.softmax(logits.float() / params.temperature, dim=-1)
    order = None
    if params.top_p < 1.0:
        probs, order = probs.sort(dim=-1, descending=True)
        before = probs.cumsum(-1) - probs
        probs = probs.masked_fill(before >= params.top_p, 0.0)
    cdf = probs.double().cumsum(-1)
    target = (u.to(cdf.device) * cdf[:, -1]).unsqueeze(1)
    idx = torch.searchsorted(cdf, target, right=True).clamp_(max=cdf.shape[1] - 1)
    if order is not None:
        idx = order.gather(1, idx)
    return idx.squeeze(1)


class HFSampler:
    """Sampler protocol on a transformers causal LM. `max_batch_size` caps sequences per forward pass."""

    def __init__(
        self,
        model: str | Path | Any,
        tokenizer: Any = None,
        *,
        dtype: str = "auto",
        device: str = "cpu",
        trust_remote_code: bool = False,
        max_batch_size: int = 64,
        seed: int = 0,
        share_prefix: bool = True,
        prefix_cache_mb: int = 0,
    ) -> None:
        if max_batch_size < 1:
            raise RecipeError(f"engine.max_batch_size: got {max_batch_size}; allowed: an integer >= 1")
        if isinstance(model, (str, Path)):
            model, tokenizer = load_causal_lm(model, dtype=dtype, device=device, trust_remote_code=trust_remote_code)
        if tokenizer is None:
            raise ValueError("HFSampler needs a tokenizer when given a model object")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.device = next(model.parameters()).device
        self.max_batch_size = max_batch_size
        self.share_prefix = share_prefix
        """False: every sample prefills its prompt itself (the baseline that benchmarks/annotate.py measures)."""
        self.stats = SamplerStats()
        cacheable = prefix_cache_mb > 0 and plain_kv_cache(model)
        self.prefix_cache = PrefixCache(prefix_cache_mb << 20, any_length=True) if cacheable else None
        """Prompts prefilled before (search: each round's prompts extend the last round's): a prompt that extends
        one runs only its new tokens."""
        self._computed: dict[int, int] = {}
        """Prompt index -> prompt tokens its first prefill of this call computed (the rest came from the cache,
        or from an identical prompt of the call)."""
        self._rng = random.Random(seed)
        self._pad_id = self._pick_pad_id()
        self._eos_cpu = torch.tensor(sorted(self._collect_eos_ids()), dtype=torch.long)
        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self._keep_kw = "logits_to_keep" if "logits_to_keep" in params else None

    def _collect_eos_ids(self) -> set[int]:
        ids: set[int] = set()
        for source in (self.tokenizer.eos_token_id, getattr(self.model.generation_config, "eos_token_id", None)):
            if isinstance(source, int):
                ids.add(source)
            elif source:
                ids.update(int(i) for i in source)
        return ids

    def _pick_pad_id(self) -> int:
        for candidate in (self.tokenizer.pad_token_id, self.tokenizer.eos_token_id, 0):
            if candidate is not None:
                return int(candidate)
        return 0

    def close(self) -> None:
        """Drop the model and the prefix cache so their memory can be reclaimed; the sampler is unusable afterwards."""
        self.model = None
        self.prefix_cache = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    @torch.inference_mode()
    def generate(
        self, prompts: list[str], params: SamplingParams, progress: Progress | None = None
    ) -> list[list[Completion]]:
        start = time.perf_counter()
        fallback = self._rng.randrange(2**32) if params.seed is None and params.prompt_seeds is None else 0
        seeds = params.seeds_for(len(prompts), fallback)
        encoded = self._encode(prompts)
        self._computed = {}
        # Longest prompts first: rows of a batch then need little padding. Samples of a prompt stay together.
        order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
        seqs = [(i, j) for i in order for j in range(params.n)]
        results: list[list[Completion | None]] = [[None] * params.n for _ in prompts]
        left = [params.n] * len(prompts)
        for b in range(0, len(seqs), self.max_batch_size):
            chunk = seqs[b : b + self.max_batch_size]
            done_prompts = 0
            for (i, j), completion in zip(chunk, self._run_batch(chunk, encoded, params, seeds)):
                results[i][j] = completion
                left[i] -= 1
                done_prompts += left[i] == 0
            if progress is not None and done_prompts:
                progress(done_prompts)
        out = [[c for c in row if c is not None] for row in results]
        self.stats.prompts += len(prompts)
        self.stats.completions += sum(len(row) for row in out)
        self.stats.prompt_tokens += sum(len(ids) for ids in encoded)
        self.stats.cached_prompt_tokens += sum(len(ids) for ids in encoded) - sum(self._computed.values())
        self.stats.generated_tokens += sum(c.num_tokens for row in out for c in row)
        self.stats.wall_s += time.perf_counter() - start
        return out

    def _encode(self, prompts: list[str]) -> list[list[int]]:
        """Token ids as the tokenizer's defaults give them (BOS where the model adds one), as vLLM does."""
        encoded: list[list[int]] = self.tokenizer(list(prompts))["input_ids"] if prompts else []
        bos = self.tokenizer.bos_token_id
        for k, ids in enumerate(encoded):
            if not ids:
                if bos is None:
                    raise DataError(f"prompt {k} is empty and the tokenizer has no BOS token to start from")
                encoded[k] = [int(bos)]
        return encoded

    def _forward(
        self, input_ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache: Any
    ) -> torch.Tensor:
        kwargs: dict[str, Any] = {self._cache_kw: cache, "use_cache": True}
        if self._keep_kw:
            kwargs[self._keep_kw] = 1
        out = self.model(input_ids=input_ids, attention_mask=mask, position_ids=positions, **kwargs)
        return out.logits[:, -1, :]

    def _prefill(
        self, chunk: list[tuple[int, int]], encoded: list[list[int]]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Any]:
        """Run each distinct prompt once (prompts with the same token ids, e.g. a search's identical candidates,
        count as one), then copy its cache row to each of its samples in `chunk` (with share_prefix off, every
        sample's row runs its prompt again)."""
        if not self.share_prefix:
            return self._prefill_rows([i for i, _ in chunk], encoded)
        first: dict[tuple[int, ...], int] = {}
        same = [first.setdefault(tuple(encoded[i]), i) for i, _ in chunk]
        uniq = list(dict.fromkeys(same))
        logits, mask, next_pos, cache = self._prefill_rows(uniq, encoded)
        row = {i: r for r, i in enumerate(uniq)}
        expand = torch.tensor([row[i] for i in same], dtype=torch.long, device=self.device)
        if len(uniq) != len(chunk):
            cache.batch_select_indices(expand)
        return logits[expand], mask[expand], next_pos[expand], cache

    def _prefill_rows(
        self, rows: list[int], encoded: list[list[int]]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Any]:
        """One forward pass over the prompts `rows` (left-padded): last logits, mask, next positions, cache.

        With the prefix cache, a prompt that extends one prefilled before runs only its new tokens: the cached
        KV goes in front, right-aligned in a `past` block ([pad | cached KV | pad | new tokens], masked where
        padded, each token at its true position), so every row still ends in the batch's last column."""
        cached = self.prefix_cache if self.share_prefix else None
        hashes = [prefix_hashes(encoded[i]) for i in rows] if cached is not None else []
        hits: list[CachedPrefix | None] = [None] * len(rows)
        if cached is not None:
            hits = [cached.longest_prefix(encoded[i], h) for i, h in zip(rows, hashes)]
        cuts = [x.kv_length if x is not None else 0 for x in hits]
        width = max(len(encoded[i]) - c for i, c in zip(rows, cuts))
        # A long cached prefix beside a long uncached prompt would make the block wider than the longest prompt:
        # cut such prefixes short (their rows run a few more tokens) so it is never wider than without the cache.
        room = max(len(encoded[i]) for i in rows) - width
        cuts = [min(c, room) for c in cuts]
        past = max(cuts)
        for i, c in zip(rows, cuts):
            self._computed.setdefault(i, len(encoded[i]) - c)
        ids = torch.full((len(rows), width), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), past + width), dtype=torch.long)
        for r, (i, c) in enumerate(zip(rows, cuts)):
            n = len(encoded[i]) - c
            ids[r, width - n :] = torch.tensor(encoded[i][c:], dtype=torch.long)
            mask[r, past - c : past] = 1
            mask[r, past + width - n :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        cut = torch.tensor(cuts, dtype=torch.long, device=self.device).unsqueeze(1)
        positions = cut + (mask[:, past:].cumsum(-1) - 1).clamp_(min=0)
        cache = DynamicCache(config=self.model.config)
        if past:
            fill_past(cache, hits, cuts, past, self.device)
        logits = self._forward(ids, mask, positions, cache)
        if cached is not None:
            self._remember(cached, rows, encoded, hashes, cuts, cache, past, width)
        return logits, mask, positions[:, -1] + 1, cache

    def _remember(
        self,
        cached: PrefixCache,
        rows: list[int],
        encoded: list[list[int]],
        hashes: list[list[int]],
        cuts: list[int],
        cache: Any,
        past: int,
        width: int,
    ) -> None:
        """Keep each prompt's KV but its last token's (what a longer prompt shares; a repeat of the same prompt
        runs that one token again for its logits)."""
        for r, (i, c) in enumerate(zip(rows, cuts)):
            ids, keep = encoded[i], len(encoded[i]) - 1
            if keep < 1 or keep == c or cached.holds(ids, keep):
                continue
            n = len(ids) - c
            spans = (slice(past - c, past), slice(past + width - n, past + width - 1))
            layers = [
                (
                    torch.cat([layer.keys[r, :, span] for span in spans], dim=1).cpu(),
                    torch.cat([layer.values[r, :, span] for span in spans], dim=1).cpu(),
                )
                for layer in cache.layers
            ]
            cached.put(ids, CachedPrefix(keep, layers, {}), hashes[r])

    def _run_batch(
        self, chunk: list[tuple[int, int]], encoded: list[list[int]], params: SamplingParams, seeds: list[int]
    ) -> list[Completion]:
        logits, mask, next_pos, cache = self._prefill(chunk, encoded)
        total, max_new = len(chunk), params.max_new_tokens
        keys = None
        if not params.greedy:
            keys = sequence_keys(
                torch.tensor([seeds[i] for i, _ in chunk], dtype=torch.int64),
                torch.tensor([j + params.first_sample for _, j in chunk], dtype=torch.int64),
            )
        tokens_out = torch.full((total, max_new), self._pad_id, dtype=torch.long)
        lengths = [max_new] * total
        reasons: list[str] = ["length"] * total
        alive = torch.arange(total)  # batch row -> sequence index in chunk
        running = torch.ones(total, dtype=torch.bool)  # False: finished, still in the batch until compaction
        watch = _StopWatch(self.tokenizer, params.stop) if params.stop else None
        check_eos = not params.ignore_eos and self._eos_cpu.numel() > 0
        for step in range(max_new):
            u = uniforms(keys[alive], step) if keys is not None else None
            new = sample_tokens(logits, params, u)
            new_cpu = new.cpu()
            tokens_out[alive[running], step] = new_cpu[running]
            ended = torch.zeros_like(running)
            if check_eos:
                ended |= running & torch.isin(new_cpu, self._eos_cpu)
                for s in alive[ended].tolist():
                    reasons[s] = "eos"
            if watch is not None:
                for r in watch.hits(tokens_out, alive, step, running & ~ended):
                    ended[r] = True
                    reasons[int(alive[r])] = "stop"
            for s in alive[ended].tolist():
                lengths[s] = step + 1
            running &= ~ended
            n_running = int(running.sum())
            if n_running == 0 or step == max_new - 1:
                break
            if len(alive) - n_running >= max(1, len(alive) // 8):  # finished rows leave: no compute spent on them
                keep = running.nonzero().flatten().to(self.device)
                cache.batch_select_indices(keep)
                alive, new, mask, next_pos = alive[running], new[keep], mask[keep], next_pos[keep]
                running = running[running]
            mask = torch.cat([mask, mask.new_ones((len(alive), 1))], dim=1)
            logits = self._forward(new.unsqueeze(1), mask, next_pos.unsqueeze(1), cache)
            next_pos = next_pos + 1
        return [self._completion(tokens_out[s, : lengths[s]].tolist(), reasons[s], params.stop) for s in range(total)]

    def _completion(self, ids: list[int], reason: str, stops: list[str]) -> Completion:
        """Decode one sequence; the EOS token counts as generated but never shows in the text."""
        text_ids = ids[:-1] if reason == "eos" else ids
        text = self.tokenizer.decode(text_ids, skip_special_tokens=True)
        hit = find_stop(text, stops) if stops else None
        if hit is not None:
            return Completion(text[: hit[0]], "stop", len(ids), hit[1], ids)
        return Completion(text, "eos" if reason == "eos" else "length", len(ids), None, ids)


def plain_kv_cache(model: Any) -> bool:
    """Whether every layer keeps a plain, growing KV cache (no sliding window, no recurrent state): only then can a
    cached prefix's KV be put in front of new tokens."""
    layers = DynamicCache(config=model.config).layers
    return bool(layers) and all(type(layer).__name__ == "DynamicLayer" for layer in layers)


class _StopWatch:
    """Finds rows whose newest tokens complete a stop string, decoding only a short tail per row."""

    def __init__(self, tokenizer: Any, stops: list[str]) -> None:
        self.tokenizer = tokenizer
        self.stops = stops
        # A stop string of b bytes spans at most b + 1 tokens; slack covers skipped special tokens.
        self.window = max(len(s.encode()) for s in stops) + 4

    def hits(self, tokens: torch.Tensor, alive: torch.Tensor, step: int, candidates: torch.Tensor) -> list[int]:
        """Batch rows among `candidates` whose text now contains a stop string."""
        rows = candidates.nonzero().flatten().tolist()
        if not rows:
            return []
        lo = max(0, step + 1 - self.window)
        tails = tokens[alive[rows], lo : step + 1].tolist()
        texts = self.tokenizer.batch_decode(tails, skip_special_tokens=True)
        return [r for r, text in zip(rows, texts) if any(s in text for s in self.stops)]
