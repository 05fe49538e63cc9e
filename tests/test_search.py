"""Search logic against scripted engines implementing the sampler and scorer protocols, checked by hand.

The policy: a prompt "Q<k>\\n" is followed by DEPTH digit steps and an answer step. A digit step is one digit
repeated STEP_LEN times; its digit is (i * n + j) % 10 for prompt i and sample j of the call, so expansions
differ and a hand can follow them. After DEPTH steps comes "The answer is X." with X the sum of the steps'
digits. A prompt ending in a partial step continues that step. One token = one character; a step ends with
"\\n" (the stop string, counted as a token). Without stop strings the policy writes a whole solution (every
step the digit of its sample) and ends with EOS (counted).

The scorer: a digit step scores digit / 10; a (possibly partial) answer step "The answer is X." scores
(X % 10) / 10, anything else 0.5. Scored tokens = len(problem) + sum(len(step) + 1).
"""

from __future__ import annotations

import re

import pytest

from prmkit.engines.base import Completion, SamplerStats, SamplingParams
from prmkit.engines.scoring import ScoredSteps, ScorerStats
from prmkit.errors import RecipeError
from prmkit.records import Record
from prmkit.search.methods import METHODS, SearchContext, choose
from prmkit.search.recipe import MethodSpec, SearchRecipe, SearchSampling
from prmkit.search.tree import Node, boundary_for

DEPTH = 2
STEP_LEN = 4


def answer_step(digit_steps: list[str]) -> str:
    return f"The answer is {sum(int(s[0]) for s in digit_steps)}."


class FakePolicy:
    def __init__(self, depth: int = DEPTH) -> None:
        self.depth = depth
        self.stats = SamplerStats()
        self.calls: list[tuple[list[str], SamplingParams]] = []

    def _full_step(self, done: list[str], current: str, digit: int) -> str:
        if len(done) >= self.depth:
            return answer_step(done)
        return (current[0] if current else str(digit)) * STEP_LEN

    def generate(self, prompts: list[str], params: SamplingParams, progress=None) -> list[list[Completion]]:
        self.calls.append((list(prompts), params))
        out = []
        for i, prompt in enumerate(prompts):
            lines = prompt.split("\n")[1:]
            done, current = lines[:-1], lines[-1]
            row = []
            for j in range(params.n):
                digit = (i * params.n + j) % 10
                if not params.stop:
                    steps = [str(digit) * STEP_LEN for _ in range(self.depth)]
                    text = "\n".join(steps + [answer_step(steps)])
                    row.append(Completion(text, "eos", len(text) + 1))
                    continue
                rest = self._full_step(done, current, digit)[len(current) :]
                if len(rest) + 1 <= params.max_new_tokens:
                    row.append(Completion(rest, "stop", len(rest) + 1, "\n"))
                else:
                    row.append(Completion(rest[: params.max_new_tokens], "length", params.max_new_tokens))
            out.append(row)
        self.stats.generated_tokens += sum(c.num_tokens for r in out for c in r)
        return out

    def close(self) -> None:
        return None


def step_score(step: str) -> float:
    if step[:1].isdigit():
        return int(step[0]) / 10
    m = re.fullmatch(r"The answer is (\d+)\.", step)
    return (int(m.group(1)) % 10) / 10 if m else 0.5


class FakePRM:
    def __init__(self) -> None:
        self.stats = ScorerStats()
        self.calls: list[list[tuple[str, list[str]]]] = []

    def score(self, items, progress=None) -> list[ScoredSteps]:
        self.calls.append(list(items))
        out = []
        for problem, steps in items:
            tokens = len(problem) + sum(len(s) + 1 for s in steps)
            out.append(ScoredSteps([step_score(s) for s in steps], 0, tokens))
        self.stats.scored_tokens += sum(r.tokens for r in out)
        return out

    def close(self) -> None:
        return None


# --------------------------------------------------------------------------- helpers


def context(
    n_problems: int = 1, draw_size: int = 4, max_steps: int = 12, depth: int = DEPTH, step_max_tokens: int = 32
) -> SearchContext:
    problems = [Record(id=f"p{k}", problem=f"Q{k}", reference="5") for k in range(n_problems)]
    return SearchContext(
        problems,
        [f"{p.problem}\n" for p in problems],
        FakePolicy(depth),
        FakePRM(),
        SearchSampling(step_max_tokens=step_max_tokens, max_steps=max_steps),
        boundary_for("lines", None),
        "lines",
        None,
        seed=0,
        draw_size=draw_size,
    )


def run(ctx: SearchContext, name: str, budget: int, **options):
    return METHODS.get(name)(ctx, budget, MethodSpec(name=name, **options))


# --------------------------------------------------------------------------- the fakes themselves


def test_fake_policy_follows_its_script():
    policy = FakePolicy()
    params = SamplingParams(n=2, stop=["\n"], max_new_tokens=32)
    out = policy.generate(["Q0\n", "Q0\n3333\n1111\n", "Q0\n22"], params)
    assert [c.text for c in out[0]] == ["0000", "1111"]
    assert [c.text for c in out[1]] == ["The answer is 4.", "The answer is 4."]
    assert [c.text for c in out[2]] == ["22", "22"] and out[2][0].num_tokens == 3


# --------------------------------------------------------------------------- whole-solution methods


def test_best_of_n_subsamples_one_draw_and_charges_only_the_samples_used():
    ctx = context(draw_size=4)
    four = run(ctx, "best_of_n", 4)[0]
    two = run(ctx, "best_of_n", 2)[0]
    assert len(ctx.sampler.calls) == 1 and ctx.sampler.calls[0][1].n == 4  # one draw for every N
    assert len(ctx.scorer.calls) == 1
    # sample j writes digit j in both steps, so its answer is 2j and its last score (2j % 10) / 10
    assert four.answer == "6" and two.answer == "2"
    per_sample = len("0000\n0000\nThe answer is 0.") + 1
    assert two.generated_tokens == 2 * per_sample and four.generated_tokens == 4 * per_sample
    assert two.scored_tokens == 2 * (2 + 5 + 5 + 17)


def test_best_of_n_aggregates_differ():
    ctx = context(draw_size=4)
    assert run(ctx, "best_of_n", 4, aggregate="last")[0].answer == "6"
    # min over [j/10, j/10, (2j % 10)/10]: sample 3 has min(0.3, 0.3, 0.6) = 0.3, the best
    assert run(ctx, "best_of_n", 4, aggregate="min")[0].answer == "6"
    # mean: sample 2 -> (0.2 + 0.2 + 0.4) / 3 = 0.267 < sample 3 -> 0.4
    assert run(ctx, "best_of_n", 4, aggregate="mean")[0].chosen.scores == [0.3, 0.3, 0.6]


def test_majority_and_weighted_majority_votes():
    nodes = [Node(0, ["The answer is 1."]), Node(0, ["The answer is 2."]), Node(0, ["The answer is 2."])]
    for node, value in zip(nodes, (0.9, 0.3, 0.4)):
        node.value = value
    assert choose(nodes, "best")[1] == "1"
    assert choose(nodes, "weighted_majority")[1] == "1"  # 0.9 against 0.3 + 0.4
    nodes[0].value = 0.6
    assert choose(nodes, "weighted_majority")[1] == "2"  # 0.6 against 0.7
    chosen, _ = choose(nodes, "weighted_majority")
    assert chosen is nodes[2]  # the best-scored solution of the winning answer
    for node in nodes:
        node.value = 1.0
    assert choose(nodes, "weighted_majority")[1] == "2"  # a plain vote


def test_choose_prefers_candidates_with_an_answer():
    a, b = Node(0, ["1111"]), Node(0, ["The answer is 3."])
    a.value, b.value = 0.9, 0.1
    assert choose([a, b])[0] is b
    assert choose([a])[1] is None
    assert choose([]) == (None, None)


# --------------------------------------------------------------------------- beam search


def test_beam_search_keeps_the_best_n_over_m_and_expands_each_m_times():
    ctx = context()
    out = run(ctx, "beam", 4, beam_width=2)[0]
    # round 0: 0000 1111 2222 3333 -> keep 3333, 2222; round 1: 3333 -> 0000 1111, 2222 -> 2222 3333
    # -> keep 2222/3333 (0.3), 2222/2222 (0.2); round 2: answers 5 (0.5) and 4 (0.4), two each
    assert out.answer == "5"
    assert out.chosen.steps == ["2222", "3333", "The answer is 5."]
    assert out.chosen.scores == [0.2, 0.3, 0.5]
    assert sorted(c.answer for c in out.candidates) == ["4", "4", "5", "5"]
    assert all(c.finish == "answer" for c in out.candidates)
    assert out.generated_tokens == 4 * 5 + 4 * 5 + 4 * 17
    assert out.scored_tokens == 4 * (2 + 5) + 4 * (2 + 10) + 4 * (2 + 10 + 17)
    calls = ctx.sampler.calls
    assert [p.n for _, p in calls] == [4, 2, 2]
    assert calls[1][0] == ["Q0\n3333\n", "Q0\n2222\n"]
    assert all(p.stop == ["\n"] for _, p in calls)


def test_beam_batches_problems_into_one_sampler_call_per_round():
    ctx = context(n_problems=2)
    outs = run(ctx, "beam", 4, beam_width=2)
    assert len(ctx.sampler.calls) == 3 and len(ctx.scorer.calls) == 3
    assert all({pr.split("\n")[0] for pr in prompts} == {"Q0", "Q1"} for prompts, _ in ctx.sampler.calls)
    # problem 1 sits after problem 0 in each call: digits 4..7 in round 0, 4..7 again in round 1
    assert outs[0].answer == "5"
    assert outs[1].chosen.steps == ["6666", "7777", "The answer is 13."]
    assert outs[0].generated_tokens == outs[1].generated_tokens - 4  # its answers have two digits


def test_beam_width_equal_to_budget_and_max_steps():
    ctx = context(max_steps=2)
    out = run(ctx, "beam", 4, beam_width=4)[0]
    # keep 1 of 4, expand 4 times; after 2 steps every candidate stops unfinished
    assert all(c.finish == "max_steps" for c in out.candidates) and len(out.candidates) == 4
    assert out.answer is None and out.chosen.steps == ["3333", "3333"]


def test_beam_select_weighted_majority():
    out = run(context(), "beam", 4, beam_width=2, select="weighted_majority")[0]
    assert out.answer == "5"  # 0.5 + 0.5 against 0.4 + 0.4


# --------------------------------------------------------------------------- DVTS


def test_dvts_searches_independent_subtrees_greedily():
    ctx = context()
    out = run(ctx, "dvts", 4, beam_width=2)[0]
    # subtree 0: {0000, 1111} -> 1111 -> {1111/0000, 1111/1111} -> 1111/1111 -> answer 2
    # subtree 1: {2222, 3333} -> 3333 -> {3333/2222, 3333/3333} -> 3333/3333 -> answer 6
    assert sorted(c.answer for c in out.candidates) == ["2", "6"]
    assert out.answer == "6" and out.chosen.group == 1
    assert [p.n for _, p in ctx.sampler.calls] == [2, 2, 2]
    assert out.generated_tokens == 4 * 5 + 4 * 5 + 4 * 17
    assert out.details == {"subtrees": 2}


# --------------------------------------------------------------------------- early rejection


def test_early_reject_on_beam_stops_candidates_part_way_through_a_step():
    ctx = context()
    out = run(ctx, "early_reject", 4, beam_width=2, partial_tokens=2, keep_fraction=0.5, min_keep=2)[0]
    # each round: 4 partial steps of 2 tokens, 2 survivors finish their step (3 tokens, or 15 for an answer)
    assert out.generated_tokens == (8 + 2 * 3) + (8 + 2 * 3) + (8 + 2 * 15)
    assert out.details == {"rejected": 6}
    assert out.answer == "5" and out.chosen.steps == ["2222", "3333", "The answer is 5."]
    beam = run(context(), "beam", 4, beam_width=2)[0]
    assert out.generated_tokens <= 0.7 * beam.generated_tokens  # 66 against 108
    # phase one of each round asks for partial_tokens only; phase two finishes the survivors with n=1
    assert [(p.n, p.max_new_tokens) for _, p in ctx.sampler.calls][:2] == [(4, 2), (1, 30)]


def test_early_reject_margin_keeps_close_candidates():
    out = run(
        context(), "early_reject", 4, beam_width=2, partial_tokens=2, keep_fraction=0.25, margin=0.15, min_keep=2
    )[0]
    # round 0: partial scores 0 .1 .2 .3: top quarter (at least N/M = 2) keeps 3, 2; margin 0.15 adds nothing
    assert out.details["rejected"] >= 2
    wide = run(
        context(), "early_reject", 4, beam_width=2, partial_tokens=2, keep_fraction=0.25, margin=1.0, min_keep=2
    )[0]
    assert wide.details == {"rejected": 0}
    assert wide.answer == run(context(), "beam", 4, beam_width=2)[0].answer


def test_early_reject_on_beam_keeps_twice_the_beam_by_default():
    # N = M = 4 keeps 1 per round, so 2 of the 4 partial steps finish (the best two partial scores)
    out = run(context(), "early_reject", 4, beam_width=4, partial_tokens=2)[0]
    assert out.details == {"rejected": 6}
    assert out.chosen.steps == ["3333", "3333", "The answer is 6."]
    # N = 4, M = 2 keeps 2: the default floor 2N/M = 4 leaves nothing to reject
    assert run(context(), "early_reject", 4, beam_width=2, partial_tokens=2)[0].details == {"rejected": 0}


def test_a_step_cut_inside_a_character_resumes_at_the_last_whole_character():
    ctx = context()
    policy, _, _ = ctx.tools("last")
    cut = policy.grow(Node(0), Completion("12 \u00d7\ufffd", "length", 4), partial=True)
    assert cut.partial == "12 \u00d7" and cut.tokens == 4 and cut.open  # the spent tokens are still charged
    assert policy.prefix(cut) == "Q0\n12 \u00d7"
    done = policy.grow(cut, Completion("\u00f7 3 = 4", "stop", 5, "\n"))
    assert done.steps == ["12 \u00d7\u00f7 3 = 4"] and done.tokens == 9 and done.partial == ""


def test_early_reject_on_best_of_n():
    ctx = context()
    out = run(ctx, "early_reject", 4, base="best_of_n", partial_tokens=2, keep_fraction=0.5)[0]
    # round 0 keeps 22, 33 of four; round 1 grows 2222 -> 00, 3333 -> 11 and keeps 3333/11; round 2 answers
    assert out.details == {"rejected": 3}
    assert [c.steps for c in out.candidates] == [["3333", "1111", "The answer is 4."]]
    assert out.generated_tokens == (8 + 6) + (4 + 3) + (2 + 15)


def test_early_reject_margin_only_on_best_of_n():
    # keep_fraction 0: only candidates within the margin of the best partial score (at least min_keep) go on
    out = run(context(), "early_reject", 4, base="best_of_n", partial_tokens=2, keep_fraction=0.0, margin=0.15)[0]
    # round 0: 0 .1 .2 .3 -> keeps .2, .3; round 1: 2222/00 (0) vs 3333/11 (.1) -> both within .15
    assert out.details == {"rejected": 2}
    assert sorted(c.answer for c in out.candidates) == ["2", "4"]


def test_recipe_checks_budgets_labels_and_partial_tokens():
    base = {"output_dir": "x", "data": {"path": "d"}, "policy": {"model": "m"}, "prm": {"model": "r"}}
    ok = SearchRecipe.model_validate(
        {**base, "methods": {"beam": {}, "bon": {"name": "best_of_n"}}, "budgets": [8, 2, 4, 4]}
    )
    assert ok.budgets == [2, 4, 8] and ok.methods["beam"].name == "beam"
    assert ok.methods["beam"].width(2) == 2
    with pytest.raises(ValueError, match="multiple of beam_width"):
        SearchRecipe.model_validate({**base, "methods": {"beam": {"beam_width": 4}}, "budgets": [6]})
    with pytest.raises(ValueError, match="give a name"):
        SearchRecipe.model_validate({**base, "methods": {"mine": {}}})
    with pytest.raises(ValueError, match="partial_tokens"):
        SearchRecipe.model_validate({**base, "methods": {"early_reject": {"partial_tokens": 64}}})
    with pytest.raises(RecipeError, match="allowed"):
        MethodSpec(name="beem")
    with pytest.raises(RecipeError, match="non-empty tag"):
        boundary_for("tag", "")
