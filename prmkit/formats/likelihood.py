"""Likelihood PRMs: a causal LM verifier whose step score is a calibrated log-likelihood of the prefix.

Step i's score is sigmoid(scale * L_i + bias), where L_i is the sum of log pi(t_k | <k) over the response
tokens of steps 1..i (text and separator) and (scale, bias) were fitted on step labels (`prmkit train`,
`objective: likelihood`). Why: a model stronger than the policy puts little mass on the policy's slips, so the
prefix likelihood drops at the first wrong step; measured on the quickstart world, its within-problem AUC was
0.89-0.92 where an implicit PRM's log-ratio against the policy reached 0.88 and fell to 0.84 after outcome
training (the ratio cancels the policy's own doubt about the tokens it sampled at temperature). L_i never rises,
so scores never rise from step to step: the first step under the threshold is where the likelihood fell.
Rendering is prmkit's own (the implicit format's), so training and scoring tokenize alike; separator tokens do not
count (after the last step a policy writes EOS, not the separator).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from prmkit.formats.base import EncodedSteps, piece_ids
from prmkit.formats.implicit import ImplicitFormat


@dataclass
class LikelihoodFormat:
    scale: float = 1.0
    bias: float = 0.0
    step_separator: str = "\n"
    chat_template: bool = False
    checkpoint: str | None = None
    name: str = field(default="likelihood", init=False)
    head: str = field(default="likelihood", init=False)

    def encode(self, tokenizer: Any, problem: str, steps: list[str], max_length: int | None = None) -> EncodedSteps:
        rendering = ImplicitFormat(
            reference_model="unused", step_separator=self.step_separator, chat_template=self.chat_template
        )
        encoded = rendering.encode(tokenizer, problem, steps, max_length)
        encoded.extra["separator_tokens"] = len(piece_ids(tokenizer, self.step_separator))
        return encoded

    def step_scores(
        self, output: Any, positions: list[int], *, response_start: int, separator_tokens: int
    ) -> list[float]:
        """Calibrated cumulative log-likelihood of the step texts (separators left out, as in training) from the
        per-token log-probabilities [seq] (0 at position 0)."""
        import torch

        logp = torch.as_tensor(output).float()
        scores, total, prev = [], 0.0, response_start - 1
        for pos in positions:
            total += float(logp[prev + 1 : pos + 1 - separator_tokens].sum())
            z = self.scale * total + self.bias
            scores.append(1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0)
            prev = pos
        return scores
