"""PRM800K human step ratings, in OpenAI's raw layout or the flattened one-row-per-candidate-step layout.

A labeller walked one solution step by step: at each step several model-written candidates were rated
(-1 bad, 0 neutral, +1 good), one was chosen to continue (or the labeller wrote their own step), and so on.
Both layouts are rebuilt into that walk and then into Records the same way. The defaults follow TRL's
conversion (`examples/datasets/prm800k.py`), the reference most PRM trainers use; each difference from
prmkit's earlier walk is an option:

* the main record follows the chosen (or human-written) step at each depth; human-written steps carry
  no rating and are labelled 1 (the labeller's own correct continuation, as in TRL) and listed in
  meta["human_steps"];
* `alternatives` (default True, as TRL): each not-chosen candidate is also its own record, the chosen
  prefix plus that candidate;
* `unrated` (default "bad", as TRL, where a missing rating is not +1): an unrated chosen step is labelled
  bad and the walk goes on, and an unrated alternative is a record labelled bad. "skip": an unrated chosen
  step ends the walk before it and unrated alternatives are left out;
* `error_end` (default "prefix", as TRL): a walk that stops at a step with nothing chosen ends before that
  step (its candidates, the errors the labeller found, are the alternatives). "first_error": the main
  record ends with that step's first candidate rated -1, so it keeps its first error;
* `answer_text` (default "keep", as TRL): the final step keeps its "# Answer" section ('Exactly.\n\n#
  Answer\n\n468'); "cut" leaves 'Exactly.'. Either way the answer also goes to the record's `answer`;
* `neutral_is_good` says how a 0 rating maps: False (TRL's choice: only +1 is good) or True (0 and +1
  good, as Qwen's PRM800K training used). It is an explicit option because both are in use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from prmkit.data.adapters.base import Adapter, Place, RowError, need, need_str, register
from prmkit.errors import RecipeError
from prmkit.records import Record

RAW_KEYS = frozenset({"question", "label"})
STEPWISE_KEYS = frozenset({"instruction", "responses", "next_response", "rating"})
ANSWER_RE = re.compile(r"\n*#\s*Answer\s*\n+(.*)\Z", re.S)


@dataclass
class Candidate:
    text: str
    """The step without its "# Answer" section."""
    rating: int | None
    answer: str | None = None
    full_text: str = ""
    """The step as written, "# Answer" section included (what TRL keeps)."""

    def __post_init__(self) -> None:
        if not self.full_text:
            self.full_text = self.text if self.answer is None else f"{self.text}\n\n# Answer\n\n{self.answer}"


@dataclass
class Step:
    """One depth of a walk: the model candidates rated there and the continuation taken."""

    candidates: list[Candidate] = field(default_factory=list)
    chosen: Candidate | None = None
    human: bool = False


UNRATED = ("bad", "skip")
ERROR_END = ("prefix", "first_error")
ANSWER_TEXT = ("keep", "cut")


def split_answer(text: str) -> tuple[str, str | None]:
    """'... 29 cents.\\n\\n# Answer\\n\\n29' -> ('... 29 cents.', '29'), as the flattened layout stores it."""
    m = ANSWER_RE.search(text)
    if not m:
        return text, None
    before = text[: m.start()]
    return (before if before.strip() else text), m.group(1).strip()


def _rating(value: Any) -> int | None:
    if value is None or (isinstance(value, float) and value != value):  # null or NaN: not rated
        return None
    if value not in (-1, 0, 1):
        raise RowError(f"rating must be -1, 0, 1 or null, got {value!r}")
    return int(value)


class WalkBuilder:
    """Turns a walk into Records under the adapter's label conventions (module docstring)."""

    def __init__(
        self,
        neutral_is_good: bool,
        alternatives: bool,
        unrated: str = "bad",
        error_end: str = "prefix",
        answer_text: str = "keep",
    ) -> None:
        for name, value, allowed in (
            ("unrated", unrated, UNRATED),
            ("error_end", error_end, ERROR_END),
            ("answer_text", answer_text, ANSWER_TEXT),
        ):
            if value not in allowed:
                raise RecipeError(
                    f"data layout 'prm800k' option {name!r} must be one of {', '.join(allowed)}, got {value!r}"
                )
        self.neutral_is_good = neutral_is_good
        self.alternatives = alternatives
        self.unrated = unrated
        self.error_end = error_end
        self.answer_text = answer_text

    def label(self, rating: int | None) -> float:
        return 1.0 if rating == 1 or (rating == 0 and self.neutral_is_good) else 0.0

    def text(self, cand: Candidate) -> str:
        return cand.full_text if self.answer_text == "keep" else cand.text

    def records(
        self, rid: str, problem: str, walk: list[Step], reference: str | None, meta: dict[str, Any]
    ) -> list[Record]:
        texts: list[str] = []
        labels: list[float] = []
        human_steps: list[int] = []
        answer: str | None = None
        branches: list[Record] = []
        for depth, step in enumerate(walk):
            end = step.chosen
            if end is None and self.error_end == "first_error":
                end = next((c for c in step.candidates if c.rating == -1), None)
            if self.alternatives:
                branches += self._branches(rid, problem, depth, step, end, texts, labels, reference, meta)
            if end is None or (not step.human and end.rating is None and self.unrated == "skip"):
                break
            texts.append(self.text(end))
            labels.append(1.0 if step.human else self.label(end.rating))
            answer = end.answer
            if step.human:
                human_steps.append(depth)
            if step.chosen is None:
                break
        if not texts:
            return branches
        main_meta = dict(meta)
        if human_steps:
            main_meta["human_steps"] = human_steps
        main = Record(
            id=rid, problem=problem, steps=texts, answer=answer, reference=reference, labels=labels, meta=main_meta
        )
        return [main, *branches]

    def _branches(
        self,
        rid: str,
        problem: str,
        depth: int,
        step: Step,
        taken: Candidate | None,
        texts: list[str],
        labels: list[float],
        reference: str | None,
        meta: dict[str, Any],
    ) -> list[Record]:
        out = []
        for k, cand in enumerate(step.candidates):
            if cand is taken or (cand.rating is None and self.unrated == "skip"):
                continue
            out.append(
                Record(
                    id=f"{rid}-s{depth}c{k}",
                    problem=problem,
                    steps=[*texts, self.text(cand)],
                    answer=cand.answer,
                    reference=reference,
                    labels=[*labels, self.label(cand.rating)],
                    meta={**meta, "branch_of": rid, "branch_step": depth},
                )
            )
        return out


def _raw_candidate(obj: Any, where: str, human: bool = False) -> Candidate:
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        raise RowError(f"{where} must be an object with a 'text' string")
    text, answer = split_answer(obj["text"])
    return Candidate(text, None if human else _rating(obj.get("rating")), answer, obj["text"])


def raw_walk(row: dict[str, Any]) -> list[Step]:
    """The walk of one raw PRM800K line (label.steps[*].completions / chosen_completion / human_completion)."""
    label = need(row, "label")
    steps = label.get("steps") if isinstance(label, dict) else None
    if not isinstance(steps, list):
        raise RowError("field 'label' must be an object with a 'steps' list")
    walk = []
    for depth, raw in enumerate(steps):
        where = f"label.steps[{depth}]"
        if not isinstance(raw, dict):
            raise RowError(f"{where} must be an object")
        completions = raw.get("completions") or []
        step = Step([_raw_candidate(c, f"{where}.completions[{k}]") for k, c in enumerate(completions)])
        chosen, human = raw.get("chosen_completion"), raw.get("human_completion")
        if chosen is not None:
            if not isinstance(chosen, int) or not 0 <= chosen < len(step.candidates):
                raise RowError(f"{where}.chosen_completion {chosen!r} is not a completion index")
            step.chosen = step.candidates[chosen]
        elif human is not None:
            step.chosen, step.human = _raw_candidate(human, f"{where}.human_completion", human=True), True
        walk.append(step)
        if step.chosen is None:
            break
    return walk


@dataclass
class _OpenWalk:
    """A walk being rebuilt from consecutive flattened rows."""

    instruction: str
    place: Place
    steps: list[Step] = field(default_factory=list)
    depth: int = 0

    def path(self) -> list[str]:
        return [s.chosen.text for s in self.steps if s.chosen is not None]


@register
class Prm800kAdapter(Adapter):
    """PRM800K in either layout (see the module docstring for the label conventions).

    Flattened rows ({instruction, responses (the chosen steps so far), next_response, rating,
    is_preferred_response, is_human_response, answer}) must come in file order: a walk ends when the
    problem changes or the depth goes back. Its record id is '<file stem>-<first row>'.
    """

    name = "prm800k"
    signatures = (RAW_KEYS, STEPWISE_KEYS)

    def __init__(
        self,
        neutral_is_good: bool = False,
        alternatives: bool = True,
        unrated: str = "bad",
        error_end: str = "prefix",
        answer_text: str = "keep",
    ) -> None:
        self.builder = WalkBuilder(neutral_is_good, alternatives, unrated, error_end, answer_text)
        self._open: _OpenWalk | None = None

    def convert(self, row: dict[str, Any], place: Place) -> list[Record]:
        if RAW_KEYS <= row.keys():
            return self._convert_raw(row, place)
        if STEPWISE_KEYS <= row.keys():
            return self._add_flat_row(row, place)
        missing = sorted(STEPWISE_KEYS - row.keys())
        raise RowError(f"neither raw PRM800K ('question', 'label') nor flattened (missing {', '.join(missing)})")

    def finish(self) -> list[Record]:
        done, self._open = self._open, None
        return self._close(done) if done else []

    def _convert_raw(self, row: dict[str, Any], place: Place) -> list[Record]:
        question = need(row, "question")
        if not isinstance(question, dict) or not isinstance(question.get("problem"), str):
            raise RowError("field 'question' must be an object with a 'problem' string")
        label = row["label"]
        meta: dict[str, Any] = {"layout": self.name}
        for key in ("labeler", "generation"):
            if row.get(key) is not None:
                meta[key] = row[key]
        if isinstance(label, dict) and label.get("finish_reason") is not None:
            meta["finish_reason"] = label["finish_reason"]
        reference = question.get("ground_truth_answer")
        return self.builder.records(place.fallback_id, question["problem"], raw_walk(row), reference, meta)

    def _add_flat_row(self, row: dict[str, Any], place: Place) -> list[Record]:
        instruction = need_str(row, "instruction")
        prefix = need(row, "responses")
        if not isinstance(prefix, (list, tuple)):
            raise RowError(f"field 'responses' must be a list of the steps so far, got {type(prefix).__name__}")
        depth = len(prefix)
        out: list[Record] = []
        walk = self._open
        if walk is None or walk.instruction != instruction or depth < walk.depth:
            out = self.finish()
            walk = self._open = _OpenWalk(instruction, place)
        if list(prefix) != walk.path()[:depth] or depth > len(walk.steps):
            raise RowError(
                f"field 'responses' does not continue the steps chosen so far in the walk starting at {walk.place}"
            )
        walk.depth = depth
        if depth == len(walk.steps):
            walk.steps.append(Step())
        step = walk.steps[depth]
        text = need_str(row, "next_response")
        answer = row.get("answer") if isinstance(row.get("answer"), str) else None
        human = bool(row.get("is_human_response"))
        if row.get("is_preferred_response"):
            if step.chosen is not None:
                raise RowError(f"a second preferred response at depth {depth} of the walk starting at {walk.place}")
            step.chosen = Candidate(text, None if human else _rating(row.get("rating")), answer)
            step.human = human
            if not human:
                step.candidates.append(step.chosen)
        elif not human:  # unchosen human drafts carry no rating and no use
            step.candidates.append(Candidate(text, _rating(row.get("rating")), answer))
        return out

    def _close(self, walk: _OpenWalk) -> list[Record]:
        meta = {"layout": self.name}
        return self.builder.records(walk.place.fallback_id, walk.instruction, walk.steps, None, meta)
