"""Rollouts from solution prefixes, graded against the reference: the unit of work of every MC labeller.

A request is (record, prefix length): the policy continues the solution after its first `length` steps,
k times, and each continuation's final answer is graded. `sample` is the general form (any step prefix
of the record's problem) and hands back the rollouts themselves, cut into steps (the tree search reuses
them as new branches). All requests of one round go to the engine in
one call, so the sampler batches across records and shares each prefix's encoding across its k samples
(the hf back-end prefills a prompt once and copies its KV cache; vLLM's prefix cache does the same).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prmkit.engines import Sampler, SamplingParams, keyed_seeds
from prmkit.grading import extract_answer, is_equivalent
from prmkit.records import Record
from prmkit.sections import PromptSpec, SamplingSpec
from prmkit.steps import join_steps, split_steps


@dataclass
class RolloutCost:
    """Compute spent on one record, so methods are compared at equal cost (prompt tokens: engine totals)."""

    rollouts: int = 0
    generated_tokens: int = 0

    def add(self, other: RolloutCost) -> None:
        self.rollouts += other.rollouts
        self.generated_tokens += other.generated_tokens


@dataclass
class Rollout:
    """One graded continuation of a prefix: its steps, whether it reached the reference, its length in tokens."""

    steps: list[str]
    correct: bool
    tokens: int


@dataclass
class PrefixResult:
    """Outcome of k rollouts after the first `length` steps of a record."""

    length: int
    correct: int
    total: int
    cost: RolloutCost = field(default_factory=RolloutCost)

    @property
    def rate(self) -> float:
        return self.correct / self.total if self.total else 0.0


class RolloutRunner:
    """Turns (record, prefix length) requests into graded rollouts through one sampler call per round."""

    def __init__(
        self,
        sampler: Sampler,
        prompt: PromptSpec,
        sampling: SamplingSpec,
        step_style: str,
        step_tag: str | None,
        k: int,
    ) -> None:
        self.sampler = sampler
        self.prompt = prompt
        self.sampling = sampling
        self.step_style = step_style
        self.step_tag = step_tag
        self.k = k

    def prefix_text(self, record: Record, length: int) -> str:
        """The prompt plus the first `length` steps, ending where the next step begins."""
        return self.text_for(record, record.steps[:length])

    def text_for(self, record: Record, steps: list[str]) -> str:
        """The prompt of `record`'s problem plus `steps`, ending where the next step begins."""
        head = self.prompt.render(record, getattr(self.sampler, "tokenizer", None))
        if not steps:
            return head
        return head + join_steps(list(steps), self.step_style, self.step_tag) + self._separator()

    def _separator(self) -> str:
        return {"lines": "\n", "paragraphs": "\n\n"}.get(self.step_style, "\n")

    def params(self, seed: int, keys: list[Any]) -> SamplingParams:
        """Rollout sampling with one seed per request, from `seed` and the request's key (record id, prefix)."""
        s = self.sampling
        return SamplingParams(
            n=self.k,
            temperature=s.temperature,
            top_p=s.top_p,
            max_new_tokens=s.max_new_tokens,
            stop=list(s.stop),
            seed=seed,
            prompt_seeds=keyed_seeds(seed, keys),
        )

    def sample(self, requests: list[tuple[Record, list[str]]], seed: int) -> list[list[Rollout]]:
        """k graded rollouts after each (record, step prefix), one engine call for all requests."""
        if not requests:
            return []
        outputs = self.sampler.generate(
            [self.text_for(r, steps) for r, steps in requests],
            self.params(seed, [f"{r.id}@{len(steps)}" for r, steps in requests]),
        )
        out = []
        for (record, _), completions in zip(requests, outputs):
            out.append(
                [
                    Rollout(
                        split_steps(c.text, self.step_style, self.step_tag),
                        bool(is_equivalent(extract_answer(c.text), record.reference)),
                        c.num_tokens,
                    )
                    for c in completions
                ]
            )
        return out

    def run(self, requests: list[tuple[Record, int]], seed: int) -> list[PrefixResult]:
        """k graded rollouts for each request; a prefix holding the whole solution is graded as it stands."""
        results: list[PrefixResult | None] = [None] * len(requests)
        pending: list[int] = []
        for i, (record, length) in enumerate(requests):
            if length >= len(record.steps):
                ok = bool(record.correct)
                results[i] = PrefixResult(length, int(ok) * self.k, self.k)
            else:
                pending.append(i)
        if pending:
            prompts = [self.prefix_text(*requests[i]) for i in pending]
            keys = [f"{requests[i][0].id}@{requests[i][1]}" for i in pending]
            outputs = self.sampler.generate(prompts, self.params(seed, keys))
            for i, completions in zip(pending, outputs):
                record, length = requests[i]
                correct = sum(bool(is_equivalent(extract_answer(c.text), record.reference)) for c in completions)
                cost = RolloutCost(len(completions), sum(c.num_tokens for c in completions))
                results[i] = PrefixResult(length, correct, len(completions), cost)
        return [r for r in results if r is not None]
