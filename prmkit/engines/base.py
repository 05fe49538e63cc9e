"""The sampling protocol every generation back-end (hf, vllm) implements, and its value types.

Callers (rollouts for MC labels, best-of-N draws, search) only see this module, so a back-end can
be swapped in a recipe without touching them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from prmkit.errors import RecipeError

FinishReason = Literal["stop", "length", "eos"]
Progress = Callable[[int], None]


@dataclass
class SamplingParams:
    """How to sample: the subset of vLLM's SamplingParams that every back-end honours the same way.

    `temperature == 0` is greedy. `seed` makes a call reproducible: the same seed and inputs give
    the same completions; `None` draws a fresh seed from the sampler's own seeded stream.
    `ignore_eos` keeps sampling past EOS (benchmarks that need an exact token count).
    `prompt_seeds`, one per prompt of a call, replaces `seed`: each prompt's samples then depend on its own
    seed and nothing else, so how records are sharded, chunked, batched or resumed never changes a sample
    (stages derive them from the run seed and the record id with `keyed_seeds`).
    `first_sample` = o draws samples o .. o + n - 1 of each prompt's stream: a call with n = a and then one with
    first_sample = a, n = b give the same completions as one call with n = a + b (rollouts in waves).
    """

    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 256
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    ignore_eos: bool = False
    prompt_seeds: list[int] | None = None
    first_sample: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.stop, str):
            self.stop = [self.stop]
        self.stop = list(self.stop)
        checks = [
            ("n", self.n >= 1, "an integer >= 1"),
            ("first_sample", self.first_sample >= 0, "an integer >= 0"),
            ("temperature", self.temperature >= 0, "a number >= 0 (0 is greedy)"),
            ("top_p", 0 < self.top_p <= 1, "a number in (0, 1]"),
            ("max_new_tokens", self.max_new_tokens >= 1, "an integer >= 1"),
            ("stop", all(isinstance(s, str) and s for s in self.stop), "a list of non-empty strings"),
        ]
        for key, ok, allowed in checks:
            if not ok:
                raise RecipeError(f"sampling.{key}: got {getattr(self, key)!r}; allowed: {allowed}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def seeds_for(self, prompts: int, fallback: int) -> list[int]:
        """One seed per prompt: `prompt_seeds`, else the call's seed (or `fallback`) mixed with the prompt's
        position in the call."""
        if self.prompt_seeds is not None:
            if len(self.prompt_seeds) != prompts:
                raise ValueError(f"sampling: {len(self.prompt_seeds)} prompt_seeds for {prompts} prompts")
            return list(self.prompt_seeds)
        seed = self.seed if self.seed is not None else fallback
        return [derive_seed(seed, "position", i) for i in range(prompts)]


def derive_seed(*parts: Any) -> int:
    """A 31-bit seed from any parts (run seed, record id, method, round): stable across runs and machines."""
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def keyed_seeds(seed: int, keys: Iterable[Any]) -> list[int]:
    """One seed per key (a record id, a prefix): the same key always gets the same seed whatever else is in
    the call; a key repeated within the call gets a fresh seed for each repeat (its occurrence count)."""
    seen: dict[Any, int] = {}
    out = []
    for key in keys:
        k = seen.get(key, 0)
        seen[key] = k + 1
        out.append(derive_seed(seed, key, k))
    return out


@dataclass
class Completion:
    """One sampled continuation. `text` excludes the prompt, the matched stop string and EOS."""

    text: str
    finish_reason: FinishReason
    num_tokens: int
    stop_reason: str | None = None
    token_ids: list[int] = field(default_factory=list)


@dataclass
class SamplerStats:
    """Running compute counters, so methods can be compared at equal cost.

    `prompt_tokens` counts each prompt once per call (not once per sample), as vLLM reports it;
    `cached_prompt_tokens` the part of them not computed: read from a prefix cache, or shared with an identical
    prompt of the call.
    """

    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    generated_tokens: int = 0
    wall_s: float = 0.0
    prompts: int = 0
    completions: int = 0

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@runtime_checkable
class Sampler(Protocol):
    """Samples `params.n` continuations per prompt; results are in prompt order, then sample order.

    `progress(k)` is called as prompts finish, with how many finished since the last call, so a
    caller can pass a progress bar's `advance` straight in.
    """

    stats: SamplerStats

    def generate(
        self, prompts: list[str], params: SamplingParams, progress: Progress | None = None
    ) -> list[list[Completion]]: ...

    def close(self) -> None: ...


def find_stop(text: str, stops: list[str], start: int = 0) -> tuple[int, str] | None:
    """The earliest occurrence at or after `start` of any stop string: (index, stop) or None.

    When two stop strings start at the same place the longer one wins, so its text never leaks
    into the completion.
    """
    best: tuple[int, str] | None = None
    for stop in stops:
        i = text.find(stop, start)
        if i >= 0 and (best is None or i < best[0] or (i == best[0] and len(stop) > len(best[1]))):
            best = (i, stop)
    return best
