"""Implicit PRMs (PRIME, "Free process rewards"): a causal LM trained on outcomes against a frozen reference.

Step i's reward is r_i = beta * sum over its tokens (step text + separator) of (log pi - log pi_ref), its
score sigmoid(r_1 + ... + r_i), the estimated outcome log-odds from that prefix. Rendering is prmkit's own
(same prompt, step and separator tokenization as `prmkit train`), so `encode` is PrmkitFormat's. The model
output this format reads is the per-token log-ratio `log pi(t_k | <k) - log pi_ref(t_k | <k)` ([seq], 0 at
position 0), which the scorer computes from the two models (head "implicit").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prmkit.errors import ModelError
from prmkit.formats.base import EncodedSteps
from prmkit.formats.prmkit_format import PrmkitFormat, prompt_ids


@dataclass
class ImplicitFormat:
    beta: float = 0.05
    reference_model: str | None = None
    step_separator: str = "\n"
    chat_template: bool = False
    checkpoint: str | None = None
    name: str = field(default="implicit", init=False)
    head: str = field(default="implicit", init=False)

    def __post_init__(self) -> None:
        if not self.reference_model:
            raise ModelError(
                "implicit format: no reference_model (the checkpoint's prmkit_prm.json or the "
                "recipe's prm.format_options.reference_model must name it)"
            )

    def encode(self, tokenizer: Any, problem: str, steps: list[str], max_length: int | None = None) -> EncodedSteps:
        rendering = PrmkitFormat(
            head="token_classification", step_separator=self.step_separator, chat_template=self.chat_template
        )
        encoded = rendering.encode(tokenizer, problem, steps, max_length)
        encoded.extra["response_start"] = len(prompt_ids(tokenizer, problem, self.chat_template))
        return encoded

    def step_scores(self, output: Any, positions: list[int], *, response_start: int) -> list[float]:
        """sigmoid of the cumulative step rewards from the per-token log-ratio [seq]; `response_start` (from
        `encode`'s extra) is the first token of step 1, so prompt tokens never count."""
        import torch

        ratio = torch.as_tensor(output).float()
        scores, total, prev = [], 0.0, response_start - 1
        for pos in positions:
            total += self.beta * float(ratio[prev + 1 : pos + 1].sum())
            scores.append(float(torch.sigmoid(torch.tensor(total))))
            prev = pos
        return scores
