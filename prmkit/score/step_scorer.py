"""Step rewards from a PRM as a Python call, for RL loops: `StepScorer(model).score(problem, steps)`.

Why: an RL framework's reward function (TRL's GRPO reward functions, verl's reward manager, OpenRLHF's remote
reward) wants per-step rewards for a batch of completions, not a recipe and an output folder. This wraps the
same scorer back-ends the `score` stage uses (hf: one forward pass per solution; vllm: vLLM's pooling runner;
generative: an LLM verifier), with the same PRM formats, so a reward computed in training equals the one
`prmkit score` and `prmkit bench` report for the same PRM.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from prmkit.steps import split_steps


class StepScorer:
    """A loaded PRM that scores (problem, steps) pairs: one score in [0, 1] per step.

    Keyword arguments are the recipe's `prm:` keys (format, engine, device, dtype, max_length, vllm, ...), e.g.
    `StepScorer("runs/quickstart-0/prm/final")` or `StepScorer("Qwen/Qwen2.5-Math-PRM-7B", format="qwen_prm",
    trust_remote_code=True, engine="vllm")`.
    """

    def __init__(self, model: str, seed: int = 0, **prm: Any) -> None:
        from prmkit.score.recipe import PRMSpec, build_scorer

        self.spec = PRMSpec.model_validate({"model": str(model), **prm})
        self._scorer = build_scorer(self.spec, seed)

    def score(self, problem: str, steps: list[str]) -> list[float]:
        """Step scores of one solution (steps past the PRM's length limit get none: the list is shorter)."""
        return self.score_batch([(problem, steps)])[0]

    def score_batch(self, items: list[tuple[str, list[str]]]) -> list[list[float]]:
        """Step scores of many solutions in one batched call, in input order."""
        return [list(r.scores) for r in self._scorer.score([(p, list(s)) for p, s in items])]

    def score_text(self, problem: str, completion: str, style: str = "lines") -> tuple[list[str], list[float]]:
        """A completion cut into steps (prmkit's step styles) and their scores: what a reward function gets."""
        steps = split_steps(completion, style)
        return steps, (self.score(problem, steps) if steps else [])

    @property
    def stats(self) -> dict[str, float]:
        """Compute counters (sequences, scored tokens, forward passes, wall time)."""
        return self._scorer.stats.as_dict()

    def close(self) -> None:
        self._scorer.close()

    def __enter__(self) -> StepScorer:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
