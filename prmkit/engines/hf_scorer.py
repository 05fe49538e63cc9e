"""The `hf` scoring back-end: one forward pass per solution scores all of its steps (transformers + torch).

The PRM format renders each solution and says where each step's score is read; sequences are sorted by
length and cut into batches by count and by padded tokens, so little compute goes to padding. A head kind
(the format's `head`) says how to load the model and what per-token output to hand the format: class
logits, LM logits (only at the score positions), value-head outputs, or implicit-PRM log-ratios.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from prmkit.engines.prefix_cache import CachedPrefix, PrefixCache
from prmkit.engines.scoring import Progress, ScoredSteps, ScorerStats
from prmkit.errors import ModelError, RecipeError
from prmkit.models.loading import (
    LOAD_ERRORS,
    _load_failure,
    load_tokenizer,
    resolve_device,
    resolve_dtype,
    resolve_model,
)
from prmkit.registry import Registry


def _from_pretrained(auto_class: Any, path: str, dtype: Any, trust_remote_code: bool) -> Any:
    try:
        return auto_class.from_pretrained(path, dtype=dtype, trust_remote_code=trust_remote_code)
    except LOAD_ERRORS as exc:
        raise ModelError(_load_failure(path, exc, "model")) from exc


class Head:
    """A loaded PRM and how to get its per-token output: `forward(ids, mask, keep) -> [batch, len(keep) or seq, ...]`.

    `keep` are the sequence positions the formats will read (sorted); a head that can skip the rest does,
    and says so with `sliced = True` (positions are then indices into `keep`).
    """

    sliced = False
    dense = False
    """Step scores read every token's output (a likelihood PRM), not only the step positions'."""

    def __init__(self, model: Any) -> None:
        self.model = model.eval()

    @property
    def supports_cache(self) -> bool:
        """Whether a pass may continue from a prefix's KV cache (the model takes past_key_values)."""
        return "past_key_values" in inspect.signature(self.model.forward).parameters

    @staticmethod
    def cache_kwargs(positions: torch.Tensor | None, cache: Any) -> dict[str, Any]:
        """What a forward pass takes to fill (or continue) `cache`: none of it without a cache."""
        if cache is None:
            return {}
        kwargs: dict[str, Any] = {"past_key_values": cache, "use_cache": True}
        if positions is not None:
            kwargs["position_ids"] = positions
        return kwargs

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device: str) -> Head:
        self.model.to(device)
        return self

    def forward(
        self, ids: torch.Tensor, mask: torch.Tensor, keep: torch.Tensor, positions: Any = None, cache: Any = None
    ) -> torch.Tensor:
        """Per-token output of `ids`; with `cache`, continuing it (positions: the new tokens' positions)."""
        out = self.model(input_ids=ids, attention_mask=mask, **self.cache_kwargs(positions, cache))
        return out.logits if hasattr(out, "logits") else out[0]


class LMHead(Head):
    """Causal LM logits, projected only at the positions read (logits_to_keep), so the vocabulary costs little."""

    def __init__(self, model: Any) -> None:
        super().__init__(model)
        self.sliced = "logits_to_keep" in inspect.signature(model.forward).parameters

    def forward(
        self, ids: torch.Tensor, mask: torch.Tensor, keep: torch.Tensor, positions: Any = None, cache: Any = None
    ) -> torch.Tensor:
        extra = self.cache_kwargs(positions, cache)
        if self.sliced:
            return self.model(input_ids=ids, attention_mask=mask, logits_to_keep=keep, **extra).logits
        return self.model(input_ids=ids, attention_mask=mask, **extra).logits


class ValueHead(Head):
    """A base model plus `v_head.summary` (Linear(hidden, 1)) read from the checkpoint: Skywork-o1-PRM style."""

    def __init__(self, model: Any, summary: torch.nn.Linear) -> None:
        super().__init__(model)
        self.summary = summary.eval()

    def to(self, device: str) -> Head:
        self.model.to(device)
        self.summary.to(device)
        return self

    def forward(
        self, ids: torch.Tensor, mask: torch.Tensor, keep: torch.Tensor, positions: Any = None, cache: Any = None
    ) -> torch.Tensor:
        hidden = self.model(input_ids=ids, attention_mask=mask, **self.cache_kwargs(positions, cache)).last_hidden_state
        return self.summary(hidden.to(self.summary.weight.dtype)).squeeze(-1)


class ImplicitHead(Head):
    """Per-token log pi(t_k | <k) - log pi_ref(t_k | <k) of the checkpoint against its reference (0 at k = 0)."""

    def __init__(self, model: Any, reference: Any) -> None:
        super().__init__(model)
        self.reference = reference.eval()

    def to(self, device: str) -> Head:
        self.model.to(device)
        self.reference.to(device)
        return self

    @property
    def supports_cache(self) -> bool:
        return False  # two models, and every token's log-ratio is read

    @staticmethod
    def _token_logprobs(model: Any, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
        return torch.gather(torch.log_softmax(logits, -1), 2, ids[:, 1:].unsqueeze(-1)).squeeze(-1)

    def forward(
        self, ids: torch.Tensor, mask: torch.Tensor, keep: torch.Tensor, positions: Any = None, cache: Any = None
    ) -> torch.Tensor:
        ratio = self._token_logprobs(self.model, ids, mask) - self._token_logprobs(self.reference, ids, mask)
        return torch.cat([ratio.new_zeros((ratio.shape[0], 1)), ratio], dim=1)


class LikelihoodHead(Head):
    """Per-token log pi(t_k | <k) of the checkpoint (0 at k = 0): what a likelihood PRM calibrates."""

    dense = True

    def forward(
        self, ids: torch.Tensor, mask: torch.Tensor, keep: torch.Tensor, positions: Any = None, cache: Any = None
    ) -> torch.Tensor:
        """[batch, seq]: 0, then log pi of tokens 1..; continuing a cache, log pi of the input's tokens 1.. only
        (token 0 is the cached prefix's last token, re-run for the logits that predict token 1)."""
        continuing = cache is not None and cache.get_seq_length() > 0
        logits = self.model(input_ids=ids, attention_mask=mask, **self.cache_kwargs(positions, cache)).logits
        logp = torch.log_softmax(logits[:, :-1].float(), -1)
        logp = torch.gather(logp, 2, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
        return logp if continuing else torch.cat([logp.new_zeros((logp.shape[0], 1)), logp], dim=1)


HEADS: Registry[Callable[..., Head]] = Registry("PRM head kind")


@HEADS.register("token_classification")
def _token_classification(path: str, dtype: Any, trust_remote_code: bool, fmt: Any) -> Head:
    """AutoModelForTokenClassification, or Qwen2.5-Math-PRM's remote-code Qwen2ForProcessRewardModel."""
    from transformers import AutoConfig, AutoModel, AutoModelForTokenClassification

    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    except LOAD_ERRORS as exc:
        raise ModelError(_load_failure(path, exc, "model config")) from exc
    if any("ProcessRewardModel" in a for a in (config.architectures or [])):
        if not trust_remote_code:
            raise ModelError(
                f"{path!r} is a {config.architectures[0]} (custom code from its repository); set "
                "prm.trust_remote_code: true in the recipe only if you trust that code"
            )
        return Head(_from_pretrained(AutoModel, path, dtype, True))
    return Head(_from_pretrained(AutoModelForTokenClassification, path, dtype, trust_remote_code))


@HEADS.register("lm")
def _lm(path: str, dtype: Any, trust_remote_code: bool, fmt: Any) -> Head:
    from transformers import AutoModelForCausalLM

    return LMHead(_from_pretrained(AutoModelForCausalLM, path, dtype, trust_remote_code))


def value_head_weights(path: str) -> dict[str, torch.Tensor]:
    """The `v_head.*` tensors stored beside the base model's weights (safetensors, or a torch .bin)."""
    from safetensors import safe_open

    folder = Path(path)
    found: dict[str, torch.Tensor] = {}
    for file in sorted(folder.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as fh:
            for key in fh.keys():
                if key.startswith("v_head."):
                    found[key[len("v_head.") :]] = fh.get_tensor(key)
    if not found:
        for file in sorted(folder.glob("*.bin")):
            state = torch.load(file, map_location="cpu", weights_only=True)
            found.update({k[len("v_head.") :]: v for k, v in state.items() if k.startswith("v_head.")})
    return found


@HEADS.register("value")
def _value(path: str, dtype: Any, trust_remote_code: bool, fmt: Any) -> Head:
    from transformers import AutoModel

    if not Path(path).is_dir():
        raise ModelError(
            f"value-head PRM {path!r}: download it to a local folder first (its v_head weights are "
            "read from the checkpoint files)"
        )
    weights = value_head_weights(path)
    if "summary.weight" not in weights:
        raise ModelError(f"{path}: no v_head.summary.weight in the checkpoint; not a value-head (Skywork-style) PRM")
    w = weights["summary.weight"]
    summary = torch.nn.Linear(w.shape[1], w.shape[0], bias="summary.bias" in weights)
    with torch.no_grad():
        summary.weight.copy_(w)
        if summary.bias is not None:
            summary.bias.copy_(weights["summary.bias"])
    base = _from_pretrained(AutoModel, path, dtype, trust_remote_code)
    return ValueHead(base, summary.float())  # fp32 head on upcast hidden states, as Skywork's reference


@HEADS.register("implicit")
def _implicit(path: str, dtype: Any, trust_remote_code: bool, fmt: Any) -> Head:
    from transformers import AutoModelForCausalLM

    reference = resolve_model(fmt.reference_model)
    return ImplicitHead(
        _from_pretrained(AutoModelForCausalLM, path, dtype, trust_remote_code),
        _from_pretrained(AutoModelForCausalLM, reference, dtype, trust_remote_code),
    )


@HEADS.register("likelihood")
def _likelihood(path: str, dtype: Any, trust_remote_code: bool, fmt: Any) -> Head:
    from transformers import AutoModelForCausalLM

    return LikelihoodHead(_from_pretrained(AutoModelForCausalLM, path, dtype, trust_remote_code))


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

    @torch.inference_mode()
    def score(self, items: list[tuple[str, list[str]]], progress: Progress | None = None) -> list[ScoredSteps]:
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
        for batch in self.batches([len(encoded[i].input_ids) - hits[i].kv_length for i in extended]):
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
        for layer in range(len(entries[0].layers)):
            k0, v0 = entries[0].layers[layer]
            keys = k0.new_zeros((len(rows), k0.shape[0], past, k0.shape[2]))
            values = v0.new_zeros((len(rows), v0.shape[0], past, v0.shape[2]))
            for r, x in enumerate(entries):
                k, v = x.layers[layer]
                keys[r, :, past - x.kv_length :] = k
                values[r, :, past - x.kv_length :] = v
            cache.update(keys.to(device), values.to(device), layer)
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
