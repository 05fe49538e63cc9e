"""A generative PRM (ThinkPRM / GenPRM style): an LLM writes k critiques of a solution with one verdict per
step; a step's score is the share of critiques that call it correct.

Verdicts are parsed from lines such as "Step 3: correct", "Step 3 is incorrect" or "Step 3: \\boxed{correct}".
The critique is asked to stop at the first incorrect step, so in a critique that found one, later steps
without a verdict count as incorrect. A step no critique judged scores 0.5 (unknown), counted in
`extra["unjudged"]`.
"""

from __future__ import annotations

import re
import time
from typing import Any

from prmkit.engines import SamplingParams, keyed_seeds, make_sampler
from prmkit.engines.scoring import Progress, ScoredSteps, ScorerStats
from prmkit.errors import RecipeError

VERDICT = re.compile(
    r"step\s*(\d+)\s*(?:[:.\-)]|is|was)*\s*(?:\\boxed\{)?\s*\**\s*(correct|incorrect|wrong|right|valid|invalid)",
    re.IGNORECASE,
)
GOOD = {"correct", "right", "valid"}


def parse_verdicts(text: str, n_steps: int) -> dict[int, bool]:
    """0-based step -> verdict from one critique (first verdict per step wins; out-of-range steps ignored)."""
    found: dict[int, bool] = {}
    for m in VERDICT.finditer(text):
        k = int(m.group(1)) - 1
        if 0 <= k < n_steps and k not in found:
            found[k] = m.group(2).lower() in GOOD
    bad = [k for k, ok in found.items() if not ok]
    if bad:
        for k in range(min(bad) + 1, n_steps):
            found.setdefault(k, False)
    return found


def combine(verdicts: list[dict[int, bool]], n_steps: int) -> tuple[list[float], int]:
    """Per-step share of "correct" among the critiques that judged it (0.5 when none did), and how many none did."""
    scores, unjudged = [], 0
    for k in range(n_steps):
        votes = [v[k] for v in verdicts if k in v]
        unjudged += not votes
        scores.append(sum(votes) / len(votes) if votes else 0.5)
    return scores, unjudged


class GenerativeScorer:
    def __init__(
        self,
        model: str,
        *,
        sampler: str = "hf",
        k: int = 4,
        temperature: float = 0.7,
        max_new_tokens: int = 256,
        template: str,
        chat_template: bool = False,
        seed: int = 0,
        **model_options: Any,
    ) -> None:
        if "{problem}" not in template or "{steps}" not in template:
            raise RecipeError("prm.generative.template must contain {problem} and {steps}")
        self.sampler = make_sampler(sampler, model=model, seed=seed, **model_options)
        self.template, self.chat_template, self.seed = template, chat_template, seed
        self.params: dict[str, Any] = dict(n=k, temperature=temperature, max_new_tokens=max_new_tokens)
        self.stats = ScorerStats()

    def prompt(self, problem: str, steps: list[str]) -> str:
        text = self.template.format(problem=problem, steps="\n".join(f"Step {i}: {s}" for i, s in enumerate(steps, 1)))
        if not self.chat_template:
            return text
        tok = getattr(self.sampler, "tokenizer", None)
        if tok is None or not getattr(tok, "chat_template", None):
            raise RecipeError("prm.generative.chat_template is on but the verifier's tokenizer has no chat template")
        return tok.apply_chat_template([{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True)

    def score(self, items: list[tuple[str, list[str]]], progress: Progress | None = None) -> list[ScoredSteps]:
        start = time.perf_counter()
        prompts = [self.prompt(p, list(s)) for p, s in items]
        # Seeds keyed by the prompt's text: a solution's verdicts do not depend on how the items were batched.
        params = SamplingParams(**self.params, seed=self.seed, prompt_seeds=keyed_seeds(self.seed, prompts))
        outputs = self.sampler.generate(prompts, params, progress=progress)
        results = []
        for (_, steps), completions in zip(items, outputs):
            scores, unjudged = combine([parse_verdicts(c.text, len(steps)) for c in completions], len(steps))
            generated = sum(c.num_tokens for c in completions)
            results.append(ScoredSteps(scores, 0, generated, {"unjudged": unjudged}))
        self.stats.sequences += len(items)
        self.stats.generated_tokens += sum(r.tokens for r in results)
        self.stats.scored_tokens = int(self.sampler.stats.prompt_tokens)
        self.stats.wall_s += time.perf_counter() - start
        return results

    def close(self) -> None:
        self.sampler.close()
