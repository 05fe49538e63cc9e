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

    def params(self, seed: int, keys: list[Any], n: int | None = None, first: int = 0) -> SamplingParams:
        """Rollout sampling with one seed per request, from `seed` and the request's key (record id, prefix):
        samples first .. first + n - 1 of each request's stream (default: all k)."""
        s = self.sampling
        return SamplingParams(
            n=self.k if n is None else n,
            first_sample=first,
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

    def waves(self, until_success: bool) -> list[int]:
        """Rollouts per wave: all k at once, or (early stopping) first_wave, then doubling the total, up to k."""
        if not (until_success and getattr(self.sampling, "early_stop", False)):
            return [self.k]
        sizes, done = [], 0
        while done < self.k:
            size = min(max(getattr(self.sampling, "first_wave", 1), done), self.k - done)
            sizes.append(size)
            done += size
        return sizes

    def run(self, requests: list[tuple[Record, int]], seed: int, until_success: bool = False) -> list[PrefixResult]:
        """k graded rollouts for each request; a prefix holding the whole solution is graded as it stands.

        `until_success` (hard labels, which need one success): roll out in waves and stop each prefix at its
        first success; its `total` is then the rollouts it took. Sample j is the same draw in any wave."""
        whole = [length >= len(record.steps) for record, length in requests]
        results = [
            PrefixResult(length, int(bool(record.correct)) * self.k, self.k) if done else PrefixResult(length, 0, 0)
            for (record, length), done in zip(requests, whole)
        ]
        pending = [i for i, done in enumerate(whole) if not done]
        first = 0
        for size in self.waves(until_success):
            if not pending:
                break
            prompts = [self.prefix_text(*requests[i]) for i in pending]
            keys = [f"{requests[i][0].id}@{requests[i][1]}" for i in pending]
            outputs = self.sampler.generate(prompts, self.params(seed, keys, size, first))
            for i, completions in zip(pending, outputs):
                record, res = requests[i][0], results[i]
                res.correct += sum(bool(is_equivalent(extract_answer(c.text), record.reference)) for c in completions)
                res.total += len(completions)
                res.cost.add(RolloutCost(len(completions), sum(c.num_tokens for c in completions)))
            first += size
            pending = [i for i in pending if results[i].correct == 0]
        return results
