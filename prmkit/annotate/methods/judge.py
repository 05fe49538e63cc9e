"""An LLM judge that names the first wrong step, alone (`judge`) or as a filter on MC labels (`consensus`).

`consensus` follows "The Lessons of Developing Process Reward Models": keep a solution's MC labels only
where the MC first error agrees with the judge's; the rest are rejected (written to rejected.jsonl).
The judge samples `k` verdicts and takes the most common index; an unparseable verdict abstains.
"""

from __future__ import annotations

import re
from collections import Counter

from prmkit.annotate.methods import LABELLERS, Annotation, LabelContext, labels_from_first_error, register_labeller
from prmkit.annotate.rollouts import RolloutCost, RolloutRunner
from prmkit.engines import SamplingParams, keyed_seeds
from prmkit.grading import extract_answer
from prmkit.records import Record

DEFAULT_JUDGE_TEMPLATE = (
    "Below is a problem and a solution split into numbered steps. Check each step in order. "
    "Give the number of the first step that contains an error, or -1 if every step is correct, "
    "and put that number in \\boxed{{}}.\n\nProblem: {problem}\n\n{numbered_steps}\n\nVerdict:"
)
_INT = re.compile(r"-?\d{1,4}")


def render_judge_prompt(template: str, record: Record) -> str:
    numbered = "\n".join(f"Step {i}: {s}" for i, s in enumerate(record.steps))
    return template.format(problem=record.problem, numbered_steps=numbered)


def parse_verdict(text: str, n_steps: int) -> int | None:
    """The judged first-error index, or None when the verdict names no valid step."""
    found = extract_answer(text, fallback=False)
    candidates = [found] if found is not None else []
    candidates += _INT.findall(text)[:1]
    for cand in candidates:
        match = _INT.search(cand or "")
        if match:
            value = int(match.group())
            if value == -1 or 0 <= value < n_steps:
                return value
    return None


def judge_first_errors(
    records: list[Record], context: LabelContext, seed: int
) -> tuple[list[int | None], list[RolloutCost]]:
    spec = context.judge
    sampler = context.judge_sampler
    params = SamplingParams(
        n=spec.k,
        temperature=spec.temperature,
        top_p=1.0,
        max_new_tokens=spec.max_new_tokens,
        stop=[],
        seed=seed,
        prompt_seeds=keyed_seeds(seed, [r.id for r in records]),
    )
    prompts = [render_judge_prompt(spec.template, r) for r in records]
    outputs = sampler.generate(prompts, params)
    verdicts, costs = [], []
    for record, completions in zip(records, outputs):
        votes = [v for v in (parse_verdict(c.text, len(record.steps)) for c in completions) if v is not None]
        verdicts.append(Counter(votes).most_common(1)[0][0] if votes else None)
        costs.append(RolloutCost(0, sum(c.num_tokens for c in completions)))
    return verdicts, costs


@register_labeller(
    "judge", rollouts=False, judge=True, worst_case=lambda n_steps, k, method=None: 0, worst_case_rule="0"
)
def judge(records: list[Record], runner: RolloutRunner, seed: int, context: LabelContext) -> list[Annotation]:
    verdicts, costs = judge_first_errors(records, context, seed)
    out = []
    for record, verdict, cost in zip(records, verdicts, costs):
        if verdict is None:
            out.append(Annotation(None, None, None, cost, kept=False, details={"judge": None}))
        else:
            out.append(
                Annotation(
                    labels_from_first_error(len(record.steps), verdict), None, verdict, cost, details={"judge": verdict}
                )
            )
    return out


@register_labeller("consensus", judge=True)
def consensus(records: list[Record], runner: RolloutRunner, seed: int, context: LabelContext) -> list[Annotation]:
    base = LABELLERS.get(context.consensus_base)(records, runner, seed, context)
    verdicts, costs = judge_first_errors(records, context, seed + 1)
    for ann, verdict, cost in zip(base, verdicts, costs):
        ann.cost.add(cost)
        ann.details["judge"] = verdict
        ann.kept = verdict is not None and verdict == ann.first_error
    return base
