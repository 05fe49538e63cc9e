"""Qwen2.5-Math-PRM: the chat template (system prompt, the problem as user turn, the steps as the assistant
turn, each step followed by `<extra_0>`), a 2-class token head, score = softmax(logits)[1] at each `<extra_0>`.

As in the model card: `"<extra_0>".join(steps) + "<extra_0>"` as the assistant content, rendered with
`apply_chat_template(..., add_generation_prompt=False)` and tokenized as one string. The real model is
`Qwen2ForProcessRewardModel` (remote code); any 2-label token classifier following it works the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prmkit.errors import ModelError
from prmkit.formats.base import EncodedSteps
from prmkit.formats.text_anchors import encode_anchored

SYSTEM_PROMPT = "Please reason step by step, and put your final answer within \\boxed{}."


@dataclass
class QwenPRMFormat:
    step_separator: str = "<extra_0>"
    system_prompt: str | None = SYSTEM_PROMPT
    name: str = field(default="qwen_prm", init=False)
    head: str = field(default="token_classification", init=False)

    def render(self, tokenizer: Any, problem: str, steps: list[str]) -> tuple[str, list[int]]:
        """The conversation text and the character index of each step's separator (its last character)."""
        if not getattr(tokenizer, "chat_template", None):
            raise ModelError("qwen_prm format: the tokenizer has no chat template")
        content = "".join(step + self.step_separator for step in steps)
        messages = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        messages += [{"role": "user", "content": problem}, {"role": "assistant", "content": content}]
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
        base = text.rfind(content)
        if base < 0:
            raise ModelError("qwen_prm format: the chat template changed the assistant turn; cannot find the steps")
        anchors, at = [], base
        for step in steps:
            at += len(step) + len(self.step_separator)
            anchors.append(at - 1)
        return text, anchors

    def encode(self, tokenizer: Any, problem: str, steps: list[str], max_length: int | None = None) -> EncodedSteps:
        text, anchors = self.render(tokenizer, problem, steps)
        encoded, _ = encode_anchored(tokenizer, text, anchors, max_length)
        return encoded

    def step_scores(self, output: Any, positions: list[int]) -> list[float]:
        import torch

        logits = torch.as_tensor(output)[positions].float()
        if logits.shape[-1] == 1:
            return torch.sigmoid(logits[:, 0]).tolist()
        return torch.softmax(logits[:, :2], dim=-1)[:, 1].tolist()
