"""The `hf` scoring back-end: one forward pass per solution scores all of its steps (transformers + torch).

The PRM format renders each solution and says where each step's score is read; sequences are sorted by
length and cut into batches by count and by padded tokens, so little compute goes to padding. The format's
head kind (prmkit/engines/prm_heads.py) says how to load the model and what per-token output to hand the
format. With `prefix_cache_mb`, a sequence that extends one scored before runs its new tokens alone.
"""

from __future__ import annotations

import inspect
import time
from pathlib import Path
from typing import Any

import torch

from prmkit.engines.prefix_cache import CachedPrefix, PrefixCache, fill_past
from prmkit.engines.prm_heads import HEADS
from prmkit.engines.scoring import Progress, ScoredSteps, ScorerStats, score_distinct
from prmkit.errors import ModelError, RecipeError
from prmkit.models.loading import load_tokenizer, resolve_device, resolve_dtype, resolve_model


def resolve_format(model: str, format: Any = "auto", options: dict[str, Any] | None = None) -> Any:
    """The PRM format object: from the checkpoint's prmkit_prm.json ("auto"), by name, or given as an object."""
    from prmkit.formats import FORMATS, format_for_checkpoint

    if not isinstance(format, str):
        return format
    if format == "auto":
        if options:
            raise RecipeError(
                "prm.format_options apply to a named format; with format: auto the checkpoint's prmkit_prm.json decides"
            )
        return format_for_checkpoint(model)
    factory = FORMATS.get(format)
    from prmkit.formats import read_metadata

    meta = read_metadata(model) if Path(str(model)).is_dir() else None
    if meta and meta.get("format") and meta["format"] != format:
        raise ModelError(
            f"{model}: this checkpoint was trained by prmkit as format {meta['format']!r} "
            f"(head {meta.get('head')!r}, see its prmkit_prm.json), not {format!r}; scoring it as "
            f"{format!r} would read the wrong outputs; use format: auto"
        )
    try:
        return factory(**(options or {}))
    except TypeError as exc:
        allowed = [
            p for p in inspect.signature(factory).parameters if not p.startswith("_") and p not in ("name", "head")
        ]
        raise RecipeError(f"prm.format_options for format {format!r}: {exc}; allowed: {', '.join(allowed)}") from None


class HFScorer:
    """Scorer protocol on transformers: `score([(problem, steps), ...])` -> step scores, one pass per solution."""

    def __init__(
        self,
        model: str | Path,
        format: Any = "auto",
        format_options: dict[str, Any] | None = None,
        *,
        dtype: str = "auto",
        device: str = "auto",
        trust_remote_code: bool = False,
        max_batch_size: int = 16,
        max_batch_tokens: int = 16384,
        max_length: int | None = None,
        prefix_cache_mb: int = 0,
    ) -> None:
        if max_batch_size < 1 or max_batch_tokens < 1:
            raise RecipeError("prm.max_batch_size and prm.max_batch_tokens must be >= 1")
        path = resolve_model(model)
        self.format = resolve_format(path, format, format_options)
        device = resolve_device(device)
        self.head = HEADS.get(self.format.head)(path, resolve_dtype(dtype, device), trust_remote_code, self.format)
        self.head.to(device)
        self.tokenizer = load_tokenizer(path, trust_remote_code=trust_remote_code)
        self.max_batch_size = max_batch_size
        self.max_batch_tokens = max_batch_tokens
        self.max_length = max_length or _model_max_length(self.head.model)
        pad = self.tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else (self.tokenizer.eos_token_id or 0))
        self.stats = ScorerStats()
        self.prefix_cache = PrefixCache(prefix_cache_mb << 20) if prefix_cache_mb > 0 else None
        """Prefixes scored before (search): a sequence that extends one runs only its new tokens."""
        if self.prefix_cache is not None and not self.head.supports_cache:
            self.prefix_cache = None  # e.g. implicit PRMs, or remote code without past_key_values

    def close(self) -> None:
        self.head = None  # type: ignore[assignment]
        self.prefix_cache = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def batches(self, lengths: list[int]) -> list[list[int]]:
        """Indices grouped longest first, each batch within max_batch_size rows and max_batch_tokens padded tokens."""
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        out: list[list[int]] = []
        for i in order:
            if (
                out
                and len(out[-1]) < self.max_batch_size
                and lengths[out[-1][0]] * (len(out[-1]) + 1) <= self.max_batch_tokens
            ):
                out[-1].append(i)
            else:
                out.append([i])
        return out

    def extend_batches(self, new: list[int], past: list[int]) -> list[list[int]]:
        """Indices of sequences that extend cached prefixes, most new tokens first, each batch within
        max_batch_tokens of (longest past + most new tokens) x rows: the padded KV block the pass attends over.
        Such a row computes only its new tokens (a few, in a search), so max_batch_size does not cap these
        passes: it would cut a round's short rows into many passes, each with the model's fixed cost. The bound
        also caps what a dense head's logits take (rows x new tokens x vocabulary), as for a full pass."""
        order = sorted(range(len(new)), key=lambda i: -new[i])
        out: list[list[int]] = []
        widest = 0
        for i in order:
            if out and (max(widest, past[i]) + new[out[-1][0]]) * (len(out[-1]) + 1) <= self.max_batch_tokens:
                out[-1].append(i)
                widest = max(widest, past[i])
            else:
                out.append([i])
                widest = past[i]
        return out

    def score(self, items: list[tuple[str, list[str]]], progress: Progress | None = None) -> list[ScoredSteps]:
        """Step scores of each (problem, steps); identical items are scored once (score_distinct)."""
        return score_distinct(self._score_all, items, progress, self.stats)

    @torch.inference_mode()
    def _score_all(self, items: list[tuple[str, list[str]]], progress: Progress | None = None) -> list[ScoredSteps]:
        start = time.perf_counter()
        encoded = [
            self.format.encode(self.tokenizer, problem, list(steps), self.max_length) for problem, steps in items
        ]
        results: list[ScoredSteps | None] = [None] * len(items)
        for i, e in enumerate(encoded):
            if not e.step_positions:
                results[i] = ScoredSteps([], e.dropped_steps, 0)  # nothing to score: no pass runs
        if progress is not None and any(r is not None for r in results):
            progress(sum(r is not None for r in results))
        hits: dict[int, CachedPrefix] = {}
        if self.prefix_cache is not None:
            for i, e in enumerate(encoded):
                if e.step_positions:
                    entry = self.prefix_cache.longest(e.input_ids, [p + 1 for p in e.step_positions])
                    if entry is not None and entry.covers(e.step_positions):
                        hits[i] = entry
        full = [i for i, e in enumerate(encoded) if e.step_positions and i not in hits]
        for batch in self.batches([len(encoded[i].input_ids) for i in full]):
            rows = [full[b] for b in batch]
            for i, scores in zip(rows, self._score_batch([encoded[i] for i in rows])):
                results[i] = ScoredSteps(scores, encoded[i].dropped_steps, len(encoded[i].input_ids))
            if progress is not None:
                progress(len(rows))
        extended = list(hits)
        news = [len(encoded[i].input_ids) - hits[i].kv_length for i in extended]
        for batch in self.extend_batches(news, [hits[i].kv_length for i in extended]):
            rows = [extended[b] for b in batch]
            for i, scores in zip(rows, self._extend_batch([encoded[i] for i in rows], [hits[i] for i in rows])):
                computed = len(encoded[i].input_ids) - hits[i].kv_length
                results[i] = ScoredSteps(scores, encoded[i].dropped_steps, computed)
            if progress is not None:
                progress(len(rows))
        self.stats.count_truncation(encoded, self.max_length)
        self.stats.sequences += len(items)
        self.stats.scored_tokens += sum(r.tokens for r in results if r is not None)
        self.stats.wall_s += time.perf_counter() - start
        return [r for r in results if r is not None]

    def _score_batch(self, rows: list[Any]) -> list[list[float]]:
        """One pass over whole sequences (right-padded); their prefixes go into the cache when it is on."""
        width = max(len(e.input_ids) for e in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, e in enumerate(rows):
            ids[r, : len(e.input_ids)] = torch.tensor(e.input_ids, dtype=torch.long)
            mask[r, : len(e.input_ids)] = 1
        keep_list = sorted({p for e in rows for p in e.step_positions})
        index = {p: k for k, p in enumerate(keep_list)}
        device = self.head.device
        keep = torch.tensor(keep_list, dtype=torch.long, device=device)
        cache = _empty_cache() if self.prefix_cache is not None else None
        output = self.head.forward(ids.to(device), mask.to(device), keep, cache=cache).float().cpu()
        self.stats.forward_passes += 1
        out = []
        for r, e in enumerate(rows):
            positions = [index[p] for p in e.step_positions] if self.head.sliced else e.step_positions
            out.append(self.format.step_scores(output[r], positions, **e.extra))
            if cache is not None:
                kv = [(layer.keys[r], layer.values[r]) for layer in cache.layers]
                if self.head.dense:
                    self._remember(e, kv, {}, output[r][: len(e.input_ids)])
                else:
                    self._remember(e, kv, {p: output[r][q] for p, q in zip(e.step_positions, positions)})
        return out

    def _extend_batch(self, rows: list[Any], entries: list[CachedPrefix]) -> list[list[float]]:
        """One pass over the new tokens of sequences that extend cached prefixes: each row's cached KV
        left-padded to the longest prefix, its new tokens right-padded, at their true positions."""
        device = self.head.device
        starts = [x.kv_length for x in entries]
        past = max(starts)
        new = [e.input_ids[st:] for e, st in zip(rows, starts)]
        width = max(len(n) for n in new)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), past + width), dtype=torch.long)
        positions = torch.zeros((len(rows), width), dtype=torch.long)
        for r, (n, st) in enumerate(zip(new, starts)):
            ids[r, : len(n)] = torch.tensor(n, dtype=torch.long)
            mask[r, past - st : past + len(n)] = 1
            positions[r] = st + torch.arange(width)
        cache = _empty_cache()
        fill_past(cache, list(entries), starts, past, device)
        fresh = [[p - st for p in e.step_positions if p >= x.length] for e, x, st in zip(rows, entries, starts)]
        keep_list = sorted({q for f in fresh for q in f})
        index = {q: k for k, q in enumerate(keep_list)}
        keep = torch.tensor(keep_list, dtype=torch.long, device=device)
        output = self.head.forward(ids.to(device), mask.to(device), keep, positions.to(device), cache).float().cpu()
        self.stats.forward_passes += 1
        out = []
        for r, (e, x, f, st) in enumerate(zip(rows, entries, fresh, starts)):
            span = slice(past - st, past + len(new[r]))
            kv = [(layer.keys[r, :, span], layer.values[r, :, span]) for layer in cache.layers]
            if self.head.dense:
                assert x.dense is not None
                full = torch.cat([x.dense[: st + 1], output[r][: len(new[r]) - 1]])
                out.append(self.format.step_scores(full, e.step_positions, **e.extra))
                self._remember(e, kv, {}, full)
                continue
            at = {st + q: output[r][index[q] if self.head.sliced else q] for q in f}
            step_rows = {p: x.rows[p] if p < x.length else at[p] for p in e.step_positions}
            stacked = torch.stack([step_rows[p] for p in e.step_positions])
            out.append(self.format.step_scores(stacked, list(range(len(e.step_positions))), **e.extra))
            self._remember(e, kv, step_rows)
        return out

    def _remember(
        self,
        e: Any,
        layers: list[tuple[torch.Tensor, torch.Tensor]],
        rows: dict[int, torch.Tensor],
        dense: torch.Tensor | None = None,
    ) -> None:
        """Cache the sequence through its last step's score token (what a child with more steps shares); a dense
        head keeps one token less of KV, so a child re-runs that token for the logits that predict its next one."""
        assert self.prefix_cache is not None
        length = e.step_positions[-1] + 1
        kv_length = length - 1 if dense is not None else length
        if kv_length < 1:
            return
        kept = [(k[:, :kv_length].detach().clone().cpu(), v[:, :kv_length].detach().clone().cpu()) for k, v in layers]
        entry = CachedPrefix(
            length,
            kept,
            {p: r.clone() for p, r in rows.items()},
            dense[:length].detach().clone() if dense is not None else None,
        )
        self.prefix_cache.put(e.input_ids, entry)


def _empty_cache() -> Any:
    from transformers import DynamicCache

    return DynamicCache()


def _model_max_length(model: Any) -> int | None:
    return getattr(model.config, "max_position_embeddings", None)
