"""The `vllm` scoring back-end: vLLM's pooling runner, `encode(..., pooling_task="token_classify")`.

Every PRM format is read the same way: vLLM returns each token's class logits (ALL token pooling, no
activation) and the format reads its own step positions from them, exactly as with the hf back-end. How a
checkpoint becomes a token classifier in vLLM depends on the format's head:

- token_classification: Qwen2ForProcessRewardModel (vLLM's own implementation, no remote code), or any
  `*ForTokenClassification` checkpoint (vLLM's classify conversion of the causal LM).
- lm (`+`/`-` PRMs: Math-Shepherd, RLHFlow, prmkit's lm head): the causal LM converted to a 2-label
  classifier whose rows are the LM-head rows of the good and bad tokens (`classifier_from_token`), so the
  two logits are exactly the LM's. vLLM's documented STEP pooler config (`returned_token_ids`) is NOT
  used: in vLLM 0.32 it indexes the normalised hidden state instead of the logits and gives wrong scores.
- value (Skywork), implicit and likelihood PRMs: not served; a ModelError, or the hf engine when `fallback: hf`.

vLLM has had bugs in reading such scores, so the first `score` call also runs the hf engine on its first
`verify_against_hf` solutions (before vLLM takes the GPU) and refuses to go on when they disagree.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prmkit.engines.scoring import Progress, ScoredSteps, ScorerStats, score_distinct
from prmkit.engines.vllm_env import build_llm, shutdown_llm
from prmkit.errors import ModelError, RecipeError
from prmkit.models.loading import load_tokenizer, resolve_model
from prmkit.registry import Registry

FALLBACKS = ("none", "hf")
POOLING_ARCHS = ("Qwen2ForProcessRewardModel",)
"""Process-reward architectures vLLM implements natively (no remote code)."""


def _architectures(path: str) -> list[str]:
    file = Path(path) / "config.json"
    if not file.is_file():
        return []  # a Hub id: vLLM and transformers resolve it; arch checks happen at start-up
    return list(json.loads(file.read_text(encoding="utf-8")).get("architectures") or [])


def _token_classification(path: str, fmt: Any, tokenizer: Any) -> dict[str, Any]:
    archs = _architectures(path)
    if any(a in POOLING_ARCHS for a in archs):
        return {}
    if any(a.endswith("ProcessRewardModel") for a in archs):
        raise ModelError(
            f"{path}: vLLM has no implementation of {archs[0]}; it serves {', '.join(POOLING_ARCHS)} "
            "and *ForTokenClassification checkpoints"
        )
    if archs and not any(a.endswith("ForTokenClassification") for a in archs):
        raise ModelError(
            f"{path}: a token-classification PRM format needs a *ForTokenClassification or "
            f"{POOLING_ARCHS[0]} checkpoint, this one is {archs[0]}"
        )
    return {"convert": "classify"}


def _label_token_ids(fmt: Any, tokenizer: Any) -> tuple[int, int]:
    """The format's (good, bad) token ids, as its encode resolves them."""
    if getattr(fmt, "_label_ids", None) is None:
        fmt.encode(tokenizer, "1", ["1"])
    ids = getattr(fmt, "_label_ids", None)
    if ids is None:
        raise ModelError(f"format {fmt.name!r} (lm head) did not resolve its good/bad token ids")
    return ids


def _lm(path: str, fmt: Any, tokenizer: Any) -> dict[str, Any]:
    good, bad = _label_token_ids(fmt, tokenizer)
    tokens = tokenizer.convert_ids_to_tokens([good, bad])
    return {"convert": "classify", "hf_overrides": {"classifier_from_token": tokens, "method": "no_post_processing"}}


# A Registry, though only this scorer reads it: a format whose head vLLM cannot pool (value heads, the LM-likelihood
# heads) fails here with the list of the head kinds that are served, which the recipe's `fallback: hf` turns on.
SERVED: Registry[Callable[[str, Any, Any], dict[str, Any]]] = Registry("PRM head kind served by vLLM")
"""Head kind -> the LLM arguments that make vLLM return that head's per-token logits."""
SERVED.register("token_classification")(_token_classification)
SERVED.register("lm")(_lm)


def _max_length(path: str, max_length: int | None, max_model_len: int | None) -> int | None:
    if max_length is not None:
        return max_length
    if max_model_len is not None:
        return max_model_len
    file = Path(path) / "config.json"
    if file.is_file():
        return json.loads(file.read_text(encoding="utf-8")).get("max_position_embeddings")
    return None


class VLLMScorer:
    """Scorer protocol on vLLM's pooling runner; the engine starts at the first `score` call (after verification).

    `max_batch_size` is vLLM's max_num_seqs; `max_batch_tokens` only applies to the hf verification run (vLLM
    packs sequences without padding and keeps its own token budget).
    """

    def __init__(
        self,
        model: str | Path,
        format: Any = "auto",
        format_options: dict[str, Any] | None = None,
        *,
        dtype: str = "auto",
        device: str = "auto",
        trust_remote_code: bool = False,
        max_batch_size: int = 64,
        max_batch_tokens: int = 16384,
        max_length: int | None = None,
        seed: int = 0,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        enforce_eager: bool | None = None,
        engine_kwargs: dict[str, Any] | None = None,
        verify_against_hf: int = 2,
        verify_tolerance: float = 0.02,
    ) -> None:
        from prmkit.engines.hf_scorer import resolve_format
        from prmkit.engines.vllm_env import check_device

        if verify_against_hf < 0 or verify_tolerance <= 0:
            raise RecipeError("prm.vllm.verify_against_hf must be >= 0 and verify_tolerance > 0")
        self.path = resolve_model(model)
        self.format = resolve_format(self.path, format, format_options)
        self.tokenizer = load_tokenizer(self.path, trust_remote_code=trust_remote_code)
        try:
            served = SERVED.get(self.format.head)
        except RecipeError:
            raise ModelError(
                f"engine 'vllm' cannot serve PRM format {self.format.name!r} ({self.format.head} head); "
                f"it serves {', '.join(SERVED.names())} heads; use engine: hf, or fallback: hf"
            ) from None
        if getattr(self.format, "decision", "pair") != "pair":
            raise ModelError(
                f"engine 'vllm' serves an lm-head PRM as a 2-token classifier, so format "
                f"{self.format.name!r} decision {self.format.decision!r} (full-vocabulary argmax) needs "
                "engine: hf"
            )
        self.device = check_device(device)
        self._llm_kwargs = dict(
            dtype=dtype,
            device=device,
            trust_remote_code=trust_remote_code,
            seed=seed,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            enforce_eager=enforce_eager,
            engine_kwargs=engine_kwargs,
            runner="pooling",
            max_num_seqs=max_batch_size,
            **served(self.path, self.format, self.tokenizer),
        )
        self._hf_kwargs = dict(
            model=self.path,
            format=self.format,
            dtype=dtype,
            device=device,
            trust_remote_code=trust_remote_code,
            max_batch_size=max_batch_size,
            max_batch_tokens=max_batch_tokens,
            max_length=max_length,
        )
        self.max_length = _max_length(self.path, max_length, max_model_len)
        self.verify_against_hf = verify_against_hf
        self.verify_tolerance = verify_tolerance
        self.verified: float | None = None
        """Largest |vllm - hf| step-score difference seen at verification (None until verified)."""
        self.llm: Any = None
        self.stats = ScorerStats()

    def close(self) -> None:
        if self.llm is not None:
            shutdown_llm(self.llm)
            self.llm = None

    def _start(self) -> None:
        from vllm.config import PoolerConfig

        pooler = PoolerConfig(task="token_classify", tok_pooling_type="ALL", use_activation=False)
        self.llm = build_llm(self.path, pooler_config=pooler, **self._llm_kwargs)

    def _hf_scores(self, items: list[tuple[str, list[str]]]) -> list[list[float]]:
        import gc

        from prmkit.engines.hf_scorer import HFScorer

        hf = HFScorer(**self._hf_kwargs)
        try:
            return [r.scores for r in hf.score(items)]
        finally:
            hf.close()
            del hf
            gc.collect()

    def score(self, items: list[tuple[str, list[str]]], progress: Progress | None = None) -> list[ScoredSteps]:
        """Step scores of each (problem, steps); identical items are scored once (score_distinct)."""
        return score_distinct(self._score_all, items, progress, self.stats)

    def _score_all(self, items: list[tuple[str, list[str]]], progress: Progress | None = None) -> list[ScoredSteps]:
        start = time.perf_counter()
        encoded = [self.format.encode(self.tokenizer, p, list(steps), self.max_length) for p, steps in items]
        todo = [i for i, e in enumerate(encoded) if e.step_positions]
        reference: list[list[float]] | None = None
        if self.llm is None:
            sample = todo[: self.verify_against_hf]
            if sample:  # before vLLM starts, so both models never hold the GPU at once
                reference = self._hf_scores([items[i] for i in sample])
            self._start()
        results = [ScoredSteps([], e.dropped_steps, len(e.input_ids)) for e in encoded]
        if todo:
            prompts = [{"prompt_token_ids": encoded[i].input_ids} for i in todo]
            outputs = self.llm.encode(prompts, pooling_task="token_classify", use_tqdm=False)
            for i, out in zip(todo, outputs):
                results[i].scores = self._read(out.outputs.data, encoded[i])
        if reference is not None:
            self._verify([results[i].scores for i in todo[: len(reference)]], reference)
        self.stats.count_truncation(encoded, self.max_length)
        self.stats.sequences += len(items)
        self.stats.scored_tokens += sum(len(e.input_ids) for e in encoded)
        self.stats.forward_passes += 1 if todo else 0
        self.stats.wall_s += time.perf_counter() - start
        if progress is not None:
            progress(len(items))
        return results

    def _read(self, logits: Any, enc: Any) -> list[float]:
        """Step scores through the format's own reader (an lm head's 2 logits are put back at their vocab ids)."""
        import torch

        logits = torch.as_tensor(logits).float().cpu()
        if self.format.head != "lm":
            return self.format.step_scores(logits, enc.step_positions, **enc.extra)
        good, bad = _label_token_ids(self.format, self.tokenizer)
        rows = logits[enc.step_positions]
        wide = torch.full((len(rows), max(good, bad) + 1), float("-inf"))
        wide[:, good], wide[:, bad] = rows[:, 0], rows[:, 1]
        return self.format.step_scores(wide, list(range(len(rows))), **enc.extra)

    def _verify(self, got: list[list[float]], want: list[list[float]]) -> None:
        worst = 0.0
        for g, w in zip(got, want):
            if len(g) != len(w):
                raise ModelError(
                    f"vllm and hf scored a different number of steps ({len(g)} vs {len(w)}) with "
                    f"{self.path}; refusing to go on (use engine: hf)"
                )
            worst = max([worst, *(abs(a - b) for a, b in zip(g, w))])
        self.verified = worst
        if worst > self.verify_tolerance:
            raise ModelError(
                f"vllm and hf step scores disagree by up to {worst:.4f} (> verify_tolerance {self.verify_tolerance}) "
                f"on the first {len(want)} solutions, with {self.path} (format {self.format.name}); vLLM may read this "
                "PRM wrongly: use engine: hf (or raise prm.vllm.verify_tolerance if the gap is only dtype noise)"
            )


def make_vllm_scorer(fallback: str = "none", **kwargs: Any) -> Any:
    """A VLLMScorer; with `fallback: hf`, the hf scorer (and a warning) when vLLM cannot serve this PRM here."""
    if fallback not in FALLBACKS:
        raise RecipeError(f"prm.vllm.fallback: got {fallback!r}; allowed: {', '.join(FALLBACKS)}")
    try:
        return VLLMScorer(**kwargs)
    except ModelError as exc:
        if fallback != "hf":
            raise
        import warnings

        from prmkit.engines.hf_scorer import HFScorer

        warnings.warn(f"engine 'vllm' unavailable for this PRM ({exc}); scoring with engine 'hf'", stacklevel=2)
        keep = (
            "model",
            "format",
            "format_options",
            "dtype",
            "device",
            "trust_remote_code",
            "max_batch_size",
            "max_batch_tokens",
            "max_length",
        )
        return HFScorer(**{k: v for k, v in kwargs.items() if k in keep})
