"""Skywork-o1-Open-PRM: a value head (Linear(hidden, 1) on the last hidden states, `v_head.summary.*` in the
checkpoint) read at the step token that ends each step; score = sigmoid(value).

As SkyworkAI/skywork-o1-prm-inference `prepare_input`: the prompt is `bos_token + problem + "\\n"`; the response
(the steps joined by the step token "\\n") is split at EVERY step token, each piece is tokenized on its own and
followed by the step token's id, whose position holds a reward. A multi-line step is therefore several pieces, its
internal newlines standalone tokens as in the reference; the step's score is the reward at the end of its last
line. (The reference encodes with the tokenizer's default specials; prmkit adds none, which is the same for the
Qwen2 tokenizer Skywork's PRMs use.) The value head runs in fp32 on upcast hidden states, as the reference
keeps it (hf engine); vLLM cannot serve it (README).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prmkit.errors import ModelError
from prmkit.formats.base import EncodedSteps


@dataclass
class SkyworkFormat:
    step_token: str = "\n"
    name: str = field(default="skywork", init=False)
    head: str = field(default="value", init=False)

    def encode(self, tokenizer: Any, problem: str, steps: list[str], max_length: int | None = None) -> EncodedSteps:
        step_ids = tokenizer.encode(self.step_token, add_special_tokens=False)
        if not step_ids:
            raise ModelError(f"skywork format: step token {self.step_token!r} tokenizes to nothing")
        step_id = step_ids[-1]
        ids = list(tokenizer.encode((tokenizer.bos_token or "") + problem + "\n", add_special_tokens=False))
        positions: list[int] = []
        for k, step in enumerate(steps):
            piece: list[int] = []
            for line in step.split(self.step_token):
                piece += (list(tokenizer.encode(line, add_special_tokens=False)) if line else []) + [step_id]
            if max_length is not None and len(ids) + len(piece) > max_length:
                return EncodedSteps(ids, positions, dropped_steps=len(steps) - k)
            ids += piece
            positions.append(len(ids) - 1)
        return EncodedSteps(ids, positions)

    def step_scores(self, output: Any, positions: list[int]) -> list[float]:
        """sigmoid of the value head's output [seq] (or [seq, 1]) at each step token."""
        import torch

        values = torch.as_tensor(output).float()
        if values.dim() == 2:
            values = values[:, 0]
        return torch.sigmoid(values[positions]).tolist()
