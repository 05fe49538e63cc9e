"""Rollouts from solution prefixes, graded against the reference: the unit of work of every MC labeller.

A request is (record, prefix length): the policy continues the solution after its first `length` steps,
k times, and each continuation's final answer is graded. `sample` is the general form (any step prefix
of the record's problem) and hands back the rollouts themselves, cut into steps (the tree search reuses
them as new branches). All requests of one round go to the engine in
one call, so the sampler batches across records and shares each prefix's encoding across its k samples
(the hf back-end prefills a prompt once and copies its KV cache; vLLM's prefix cache does the same).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from prmkit.engines import Sampler, SamplingParams, derive_seed, keyed_seeds
from prmkit.grading import extract_answer, is_equivalent
from prmkit.records import Record
from prmkit.sections import PromptSpec, SamplingSpec
from prmkit.steps import join_steps, split_steps


@dataclass
class RolloutCost:
    """Compute spent on one record, so methods are compared at equal cost (prompt tokens: engine totals).

    `witnesses` counts draws that cost nothing here: right solutions through a probed prefix, each a
    successful draw there (see PrefixPool)."""

    rollouts: int = 0
    generated_tokens: int = 0
    witnesses: int = 0

    def add(self, other: RolloutCost) -> None:
        self.rollouts += other.rollouts
        self.generated_tokens += other.generated_tokens
        self.witnesses += other.witnesses


@dataclass
class Rollout:
    """One graded continuation of a prefix: its steps, whether it reached the reference, its length in tokens."""

    steps: list[str]
    correct: bool
    tokens: int


@dataclass
class PrefixResult:
    """Outcome of the draws after the first `length` steps of a record (k, or more with solution draws)."""

    length: int
    correct: int
    total: int
    cost: RolloutCost = field(default_factory=RolloutCost)

    @property
    def rate(self) -> float:
        return self.correct / self.total if self.total else 0.0


@dataclass
class PrefixPool:
    """The draws known at a chunk's prefixes, keyed by prefix prompt text, so a prefix is rolled out once.

    `fresh`: the graded rollouts drawn so far after each prefix, in sample order (sample j of a prefix is one
    fixed draw: its seed comes from the prompt text, so solutions sharing a prefix share its rollouts and a
    later round reads what an earlier one drew). `witnesses`: with `reuse_solutions`, the chunk's solutions
    with a right final answer, indexed at each prefix they pass through: a right solution through a prefix is a
    successful draw there, so a hard verdict there needs no rollout (a record is never its own witness)."""

    fresh: dict[str, list[tuple[bool, int]]] = field(default_factory=dict)
    witnesses: dict[str, list[str]] = field(default_factory=dict)


class RolloutRunner:
    """Turns (record, prefix length) requests into graded rollouts through one sampler call per round."""

    share_prefixes = True
    """Requests for one prefix share its draws (each drawn and paid once). benchmarks/annotate.py turns it off
    to cost the same labels as if every request drew its own (sample j of a prompt is the same draw either way)."""

    def __init__(
        self,
        sampler: Sampler,
        prompt: PromptSpec,
        sampling: SamplingSpec,
        step_style: str,
        step_tag: str | None,
        k: int,
        reuse_solutions: bool = False,
    ) -> None:
        self.sampler = sampler
        self.reuse_solutions = reuse_solutions
        self.prompt = prompt
        self.sampling = sampling
        self.step_style = step_style
        self.step_tag = step_tag
        self.k = k

    def pool(self, records: list[Record]) -> PrefixPool:
        """A chunk's pool: with reuse_solutions, each right solution indexed at its strict prefixes (a whole
        problem's solutions are in one chunk: see annotate/selection.py's work_chunks)."""
        pool = PrefixPool()
        if self.reuse_solutions:
            for record in records:
                if record.correct:
                    for m in range(1, len(record.steps)):
                        pool.witnesses.setdefault(self.prefix_text(record, m), []).append(record.id)
        return pool

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

    def run(
        self,
        requests: list[tuple[Record, int]],
        seed: int,
        until_success: bool = False,
        pool: PrefixPool | None = None,
        draws: int | None = None,
    ) -> list[PrefixResult]:
        """k draws for each request; a prefix holding the whole solution is graded as it stands.

        The draws are k fresh rollouts, or `draws` (fewer: a later call for more reads these from the pool).
        `until_success` (hard labels, which need one success): a prefix with a witness (another right solution
        through it: pool.witnesses) is good without rollouts; the others roll out in waves and stop at their
        first success, their `total` then the draws they took. Sample j of a prefix is the same draw in any
        wave, round or record, so the labels are those of all k draws. Requests for one prefix share its
        rollouts: each is drawn once and charged to the first request that needed it."""
        pool = pool if pool is not None else PrefixPool()
        whole = [length >= len(record.steps) for record, length in requests]
        results = [
            PrefixResult(length, int(bool(record.correct)) * self.k, self.k) if done else PrefixResult(length, 0, 0)
            for (record, length), done in zip(requests, whole)
        ]
        texts: dict[int, str] = {}  # request -> its prefix prompt
        slots: dict[int, str] = {}  # request -> its draws' key in the pool: the prompt, so requests share them
        need: dict[int, int] = {}
        for i, ((record, _), done) in enumerate(zip(requests, whole)):
            if done:
                continue
            texts[i] = text = self.prefix_text(*requests[i])
            slots[i] = text if self.share_prefixes else f"{record.id}\x00{text}"
            witnesses = [rid for rid in pool.witnesses.get(text, ()) if rid != record.id] if until_success else []
            results[i].correct = results[i].total = results[i].cost.witnesses = len(witnesses)
            need[i] = 0 if witnesses else self.k if draws is None else min(draws, self.k)
        first = 0
        for size in self.waves(until_success):
            stop = first + size
            pending = [i for i in need if need[i] > first and not (until_success and results[i].correct > 0)]
            if not pending:
                break
            upto = {i: min(stop, need[i]) for i in pending}
            self._draw(pending, requests, texts, slots, upto, pool, seed, results)
            for i in pending:
                drawn = pool.fresh[slots[i]][first : upto[i]]
                results[i].correct += sum(right for right, _ in drawn)
                results[i].total += len(drawn)
            first = stop
        return results

    def _draw(
        self,
        pending: list[int],
        requests: list[tuple[Record, int]],
        texts: dict[int, str],
        slots: dict[int, str],
        upto: dict[int, int],
        pool: PrefixPool,
        seed: int,
        results: list[PrefixResult],
    ) -> None:
        """Draw the samples pending requests miss (up to each one's need), one engine call per (first, n) shape.
        Sample j of a prompt has the seed of (run seed, prompt text) and stream index j, whoever asks for it."""
        wanted: dict[str, tuple[int, int]] = {}  # slot -> (samples wanted, the request they are charged to)
        for i in pending:
            if upto[i] > wanted.get(slots[i], (0, -1))[0]:
                wanted[slots[i]] = (upto[i], i)
        shapes: dict[tuple[int, int], list[str]] = {}
        for slot, (hi, _) in wanted.items():
            have = len(pool.fresh.setdefault(slot, []))
            if hi > have:
                shapes.setdefault((have, hi - have), []).append(slot)
        for (first, n), group in shapes.items():
            prompts = [texts[wanted[slot][1]] for slot in group]
            params = self.params(seed, [], n, first)
            params.prompt_seeds = [derive_seed(seed, hashlib.sha256(t.encode()).hexdigest()[:32], 0) for t in prompts]
            outputs = self.sampler.generate(prompts, params)
            for slot, completions in zip(group, outputs):
                charged = wanted[slot][1]
                reference = requests[charged][0].reference
                pool.fresh[slot].extend(
                    (bool(is_equivalent(extract_answer(c.text), reference)), c.num_tokens) for c in completions
                )
                results[charged].cost.add(RolloutCost(len(completions), sum(c.num_tokens for c in completions)))
