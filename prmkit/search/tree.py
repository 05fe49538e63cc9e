"""The pieces every step-level search is made of: candidates, the step boundary, one step of the policy for
many candidates at once, PRM scores of whole prefixes, and the compute each problem spent.

A round of any tree method is: pick parents, ask the policy for k next steps of each (ONE sampler call for
every problem of the chunk: each distinct prefix is prefilled once and shared by its k samples), score every
new prefix with the PRM in ONE scorer call (a whole prefix in one pass, all its steps' scores read out), then
select. Methods differ only in how they pick parents and select children.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from prmkit.engines.base import Completion, Sampler, SamplingParams, keyed_seeds
from prmkit.engines.scoring import AGGREGATES, Scorer
from prmkit.errors import RecipeError
from prmkit.grading import extract_answer
from prmkit.registry import Registry
from prmkit.steps import join_steps

OPEN = None
UNSCORED = -1.0
INCOMPLETE = "\ufffd"
"""What a tokenizer decodes the first bytes of an unfinished multi-byte character to."""
"""The value of a candidate the PRM gave no score (no steps, or all past the PRM's length limit): ranked last."""


@dataclass
class Node:
    """A candidate solution: its steps so far, the PRM's scores of them, and why it ended (None while open)."""

    problem: int
    steps: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    finish: str | None = OPEN
    """answer (wrote a final answer), eos, length (a step ran past step_max_tokens), empty_step, max_steps."""
    group: int = 0
    """The subtree a dvts candidate belongs to."""
    tokens: int = 0
    """Tokens the policy generated along this path."""
    partial: str = ""
    """Text of the step being generated (early rejection scores it before the step is finished)."""
    value: float = UNSCORED
    """The aggregate of `scores` that ranks this candidate."""

    @property
    def open(self) -> bool:
        return self.finish is OPEN

    @property
    def answer(self) -> str | None:
        """The answer the candidate stated (no guessing from a last number: an unfinished candidate has none)."""
        return extract_answer("\n".join(self.steps), fallback=False) if self.steps else None


@dataclass(frozen=True)
class Boundary:
    """Where a step ends for a step style: the stop strings of the policy and the text that starts the next step."""

    stop: tuple[str, ...]
    after: str


# Keyed by the recipe's `steps.style`, so an unknown style gets the registry's error and "did you mean"; it holds only
# what search adds to prmkit.steps.STEP_STYLES (the stop strings that end a step while it is generated).
BOUNDARIES: Registry[Any] = Registry("step style")
BOUNDARIES.register("lines")(lambda tag: Boundary(("\n",), "\n"))
BOUNDARIES.register("paragraphs")(lambda tag: Boundary(("\n\n",), "\n\n"))
BOUNDARIES.register("tag")(lambda tag: Boundary((tag,), tag + "\n"))


def boundary_for(style: str, tag: str | None) -> Boundary:
    """The step boundary of `steps.style`; an empty separator is a RecipeError (every step would be empty)."""
    if style == "tag" and not tag:
        raise RecipeError("steps.tag: style 'tag' needs a non-empty tag, e.g. ' ки' or '<extra_0>'")
    if style != "tag" and tag is not None:
        raise RecipeError(f"steps.tag: style {style!r} takes no tag (got {tag!r}); use style 'tag'")
    return BOUNDARIES.get(style)(tag)


@dataclass
class Ledger:
    """Compute one method spent on each problem of a chunk."""

    generated: list[int]
    scored: list[int]

    @classmethod
    def for_problems(cls, n: int) -> Ledger:
        return cls([0] * n, [0] * n)


class StepPolicy:
    """Next steps for many candidates of many problems, through one sampler call."""

    def __init__(
        self,
        sampler: Sampler,
        prompts: list[str],
        boundary: Boundary,
        step_style: str,
        step_tag: str | None,
        temperature: float,
        top_p: float,
        step_max_tokens: int,
        max_steps: int,
        ledger: Ledger,
        problem_ids: list[str] | None = None,
    ) -> None:
        self.sampler = sampler
        self.prompts = prompts
        self.problem_ids = problem_ids if problem_ids is not None else [str(i) for i in range(len(prompts))]
        """Seed keys: a node's samples depend on its problem's id and its place among that problem's nodes."""
        self.boundary = boundary
        self.style, self.tag = step_style, step_tag
        self.temperature, self.top_p = temperature, top_p
        self.step_max_tokens = step_max_tokens
        self.max_steps = max_steps
        self.ledger = ledger

    def prefix(self, node: Node) -> str:
        """Prompt, the steps so far, the separator, and the part of the current step already generated."""
        text = self.prompts[node.problem]
        if node.steps:
            text += join_steps(node.steps, self.style, self.tag) + self.boundary.after
        return text + node.partial

    def sample(self, nodes: list[Node], n: int, seed: int, max_tokens: int) -> list[list[Completion]]:
        """`n` continuations of each node, each stopping at the step boundary or after `max_tokens`."""
        if not nodes:
            return []
        params = SamplingParams(
            n=n,
            temperature=self.temperature,
            top_p=self.top_p,
            max_new_tokens=max_tokens,
            stop=list(self.boundary.stop),
            seed=seed,
            prompt_seeds=keyed_seeds(seed, [self.problem_ids[node.problem] for node in nodes]),
        )
        outputs = self.sampler.generate([self.prefix(node) for node in nodes], params)
        for node, completions in zip(nodes, outputs):
            self.ledger.generated[node.problem] += sum(c.num_tokens for c in completions)
        return outputs

    def grow(self, parent: Node, completion: Completion, partial: bool = False) -> Node:
        """The child a completion makes. With `partial`, a completion cut by the token limit is a step in progress."""
        tokens = parent.tokens + completion.num_tokens
        text = parent.partial + completion.text
        if partial and completion.finish_reason == "length":
            # A cut through a multi-byte character decodes to U+FFFD, which would not re-encode to the bytes the
            # model wrote: the step in progress ends at the last whole character and the rest is sampled again.
            return replace(
                parent,
                steps=list(parent.steps),
                scores=list(parent.scores),
                partial=text.rstrip(INCOMPLETE),
                tokens=tokens,
                value=UNSCORED,
            )
        step = text.strip()
        steps = parent.steps + [step] if step else list(parent.steps)
        child = Node(parent.problem, steps, [], OPEN, parent.group, tokens)
        if not step:
            child.finish = "empty_step"
        elif completion.finish_reason == "eos":
            child.finish = "eos"
        elif completion.finish_reason == "length":
            child.finish = "length"
        elif extract_answer(step, fallback=False) is not None:  # the step states an answer
            child.finish = "answer"
        elif len(steps) >= self.max_steps:
            child.finish = "max_steps"
        return child


class CandidateScorer:
    """PRM scores of candidates' whole prefixes (the step in progress included, when there is one)."""

    def __init__(self, scorer: Scorer, problems: list[str], aggregate: str, ledger: Ledger) -> None:
        self.scorer = scorer
        self.problems = problems
        self.aggregate = AGGREGATES.get(aggregate)
        self.ledger = ledger

    def score(self, nodes: list[Node]) -> None:
        """Set `scores` and `value` of each node; candidates with nothing to score keep UNSCORED."""
        todo = [n for n in nodes if n.steps or n.partial.strip()]
        if not todo:
            return
        items = [(self.problems[n.problem], n.steps + ([n.partial.strip()] if n.partial.strip() else [])) for n in todo]
        for node, result in zip(todo, self.scorer.score(items)):
            self.ledger.scored[node.problem] += result.tokens
            node.scores = [float(s) for s in result.scores]
            node.value = float(self.aggregate(node.scores)) if node.scores else UNSCORED


def ranked(nodes: list[Node]) -> list[Node]:
    """Best value first; ties keep their order, so a search is deterministic."""
    return [n for _, n in sorted(enumerate(nodes), key=lambda t: (-t[1].value, t[0]))]
