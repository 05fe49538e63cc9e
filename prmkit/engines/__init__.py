"""Engines by name: sampler back-ends (`make_sampler`) and, re-exported from `scoring`, scorer back-ends.

A recipe's `engine: hf|vllm` picks a sampler through `make_sampler`. Entries are factories that
import their back-end on first use, so `import prmkit.engines` stays cheap (no torch) and a missing
optional back-end (vllm) only matters to the recipes that ask for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prmkit.engines.base import Completion, Sampler, SamplerStats, SamplingParams, derive_seed, find_stop, keyed_seeds
from prmkit.engines.scoring import AGGREGATES, SCORERS, ScoredSteps, Scorer, ScorerStats, aggregate, make_scorer
from prmkit.registry import Registry

SAMPLERS: Registry[Callable[..., Sampler]] = Registry("sampler engine")


@SAMPLERS.register("hf")
def _hf(**kwargs: Any) -> Sampler:
    from prmkit.engines.hf import HFSampler

    return HFSampler(**kwargs)


@SAMPLERS.register("vllm")
def _vllm(**kwargs: Any) -> Sampler:
    from prmkit.engines.vllm_sampler import VLLMSampler

    return VLLMSampler(**kwargs)


def make_sampler(name: str, **kwargs: Any) -> Sampler:
    """Build the sampler back-end `name` (e.g. make_sampler("hf", model="path/or/hub-id", device="cpu"))."""
    return SAMPLERS.get(name)(**kwargs)


__all__ = [
    "SAMPLERS",
    "Completion",
    "Sampler",
    "SamplerStats",
    "SamplingParams",
    "derive_seed",
    "find_stop",
    "keyed_seeds",
    "make_sampler",
    "AGGREGATES",
    "SCORERS",
    "ScoredSteps",
    "Scorer",
    "ScorerStats",
    "aggregate",
    "make_scorer",
]
