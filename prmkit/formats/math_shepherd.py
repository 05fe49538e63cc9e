"""Math-Shepherd: `question + " " + "Step k: <step> ки\\n"` per step, read with the causal LM head at each
tag token: softmax over the logits of "+" and "-", P(+).

As peiyi9979/math-shepherd-mistral-7b-prm's reference code (and PRMBench's wrapper): the whole string is
tokenized once, steps that already start with "Step" keep their own prefix, the score is read AT the tag
token (which the model was trained to follow by + or -). The label ids are `tokenizer.encode(token)` with no
specials, each one token (for Mistral's tokenizer that is "▁+"/"▁-", ids 648/387, as upstream).

`layout: search_and_learn` reproduces huggingface/search-and-learn's MathShepherd scorer instead:
`system_prompt + "\\n" + problem + "\\n" + " " + steps joined by " ки\\n\\n" + " ки"`, no "Step k:" prefixes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prmkit.errors import RecipeError
from prmkit.formats.base import EncodedSteps
from prmkit.formats.prmkit_format import single_token_id
from prmkit.formats.text_anchors import encode_anchored

LAYOUTS = ("reference", "search_and_learn")


@dataclass
class MathShepherdFormat:
    step_tag: str = "ки"
    good_token: str = "+"
    bad_token: str = "-"
    step_prefix: bool = True
    """Write "Step k: " before steps that do not start with "Step" already (reference layout only)."""
    layout: str = "reference"
    """reference (the model card's code) or search_and_learn (see the module docstring)."""
    system_prompt: str = ""
    """The search_and_learn layout's system prompt, written before the problem."""
    name: str = field(default="math_shepherd", init=False)
    head: str = field(default="lm", init=False)
    _label_ids: tuple[int, int] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise RecipeError(f"math_shepherd format: layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")

    def render(self, problem: str, steps: list[str]) -> tuple[str, list[int]]:
        if self.layout == "search_and_learn":
            return self._render_search_and_learn(problem, steps)
        text = problem + " "
        anchors = []
        for k, step in enumerate(steps, start=1):
            step = step.strip()
            if self.step_prefix and not step.lower().startswith("step"):
                step = f"Step {k}: {step}"
            text += f"{step} {self.step_tag}"
            anchors.append(len(text) - 1)
            text += "\n"
        return text, anchors

    def _render_search_and_learn(self, problem: str, steps: list[str]) -> tuple[str, list[int]]:
        text = f"{self.system_prompt}\n{problem}\n "
        anchors = []
        for k, step in enumerate(steps):
            text += f"{step} {self.step_tag}"
            anchors.append(len(text) - 1)
            if k + 1 < len(steps):
                text += "\n\n"
        return text, anchors

    def encode(self, tokenizer: Any, problem: str, steps: list[str], max_length: int | None = None) -> EncodedSteps:
        self._label_ids = (
            single_token_id(tokenizer, self.good_token, "good_token"),
            single_token_id(tokenizer, self.bad_token, "bad_token"),
        )
        text, anchors = self.render(problem, steps)
        encoded, _ = encode_anchored(tokenizer, text, anchors, max_length, add_special_tokens=True)
        return encoded

    def step_scores(self, output: Any, positions: list[int]) -> list[float]:
        from prmkit.formats.rlhflow import pair_softmax

        return pair_softmax(output, positions, self._label_ids, self.name)
