"""The embedded arithmetic world: generator, exact checker, planted-error benchmark, task registry."""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from pathlib import Path

import pytest

from prmkit.errors import DataError, RecipeError
from prmkit.records import Record
from prmkit.tasks import TASKS, get_task
from prmkit.tasks.arithmetic import (
    DIFFICULTIES,
    PLANTERS,
    PROCESSBENCH_FIELDS,
    Difficulty,
    Problem,
    as_difficulty,
    check,
    check_record,
    final_answer,
    generate,
    parse_problem,
    planted_errors,
    problem_at,
    prompt,
    reference_solution,
    solution_text,
    split_steps,
    to_processbench_row,
    to_record,
)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"

# Start at 17. Add 23. Multiply by 4. Subtract 35.  ->  40, 160, 125
P = Problem(17, (("+", 23), ("*", 4), ("-", 35)), id="hand")
REF = ["17 + 23 = 40", "40 * 4 = 160", "160 - 35 = 125", "The answer is 125."]


# --------------------------------------------------------------------------- generator


def test_problem_stream_is_pinned_and_deterministic():
    # Pinned: a change of the stream would silently change every shipped recipe's data.
    assert problem_at(0, 0).text == (
        "Start at 8. Multiply by 9. Subtract 18. Multiply by 3. Subtract 3. What is the result?"
    )
    assert reference_solution(problem_at(0, 0)) == [
        "8 * 9 = 72",
        "72 - 18 = 54",
        "54 * 3 = 162",
        "162 - 3 = 159",
        "The answer is 159.",
    ]
    a, b = generate(60, seed=7), generate(60, seed=7)
    assert a == b
    assert generate(10, seed=7, start=50) == a[50:]
    assert [problem_at(i, 7) for i in (3, 59)] == [a[3], a[59]]
    assert [p.text for p in generate(60, seed=8)] != [p.text for p in a]
    assert len({p.text for p in a}) == 60
    assert a[5].id == "arith-7-5"
    with pytest.raises(ValueError):
        problem_at(-1, 0)


@pytest.mark.parametrize(
    "difficulty",
    [
        None,
        "easy",
        "hard",
        {
            "min_ops": 2,
            "max_ops": 2,
            "add_min": 5,
            "add_max": 7,
            "mul_min": 3,
            "mul_max": 3,
            "start_min": 10,
            "start_max": 12,
            "max_value": 60,
            "ops": ["+", "-", "*", "/"],
        },
    ],
)
def test_difficulty_knobs_are_respected(difficulty):
    d = as_difficulty(difficulty)
    problems = generate(400, seed=3, difficulty=difficulty)
    seen_ops: Counter[str] = Counter()
    for p in problems:
        assert d.min_ops <= len(p.ops) <= d.max_ops
        assert d.start_min <= p.start <= d.start_max
        assert all(d.min_value <= v <= d.max_value for v in p.values)
        for o, b in p.ops:
            seen_ops[o] += 1
            if o in "+-":
                assert d.add_min <= b <= d.add_max
            else:
                assert d.mul_min <= b <= d.mul_max
    assert set(seen_ops) == set(d.ops)  # every allowed operation shows up
    assert Counter(len(p.ops) for p in problems).keys() == set(range(d.min_ops, d.max_ops + 1))


def test_difficulty_errors_name_the_key():
    with pytest.raises(RecipeError, match="min_ops"):
        as_difficulty({"min_ops": 6, "max_ops": 3})
    with pytest.raises(RecipeError, match=r"task\.difficulty\.colour"):
        as_difficulty({"colour": 1}, where="task.difficulty")
    with pytest.raises(RecipeError, match="ops must"):
        as_difficulty({"ops": ["+", "^"]})
    with pytest.raises(RecipeError, match="easy, hard, long, medium"):
        as_difficulty("impossible")
    assert as_difficulty({"preset": "hard", "max_ops": 7}).max_ops == 7
    assert as_difficulty({"preset": "hard", "max_ops": 7}).mul_max == DIFFICULTIES.get("hard").mul_max
    assert as_difficulty(None) == Difficulty()


def test_problem_text_round_trips():
    for p in generate(200, seed=1, difficulty="hard"):
        q = parse_problem(p.text)
        assert (q.start, q.ops) == (p.start, p.ops)
    with pytest.raises(DataError, match="not an arithmetic-world problem"):
        parse_problem("What is 2 + 2?")
    with pytest.raises(DataError, match="unknown operation 'Square'"):
        parse_problem("Start at 3. Square 2. What is the result?")


# --------------------------------------------------------------------------- checker


def test_reference_solutions_pass_the_checker():
    for diff in ("easy", "medium", "hard"):
        for p in generate(300, seed=11, difficulty=diff):
            steps = reference_solution(p)
            assert len(steps) == len(p.ops) + 1
            c = check(p, steps)
            assert c.correct and c.answer_correct and c.first_error == -1
            assert c.answer == p.answer and c.labels == [1.0] * len(steps)
            r = to_record(p)
            assert (r.id, r.problem, r.steps) == (p.id, p.text, steps)
            assert r.answer == r.reference == str(p.answer)
            assert r.correct is True and r.labels == [1.0] * len(steps) and r.first_error == -1
            assert r.meta["first_error"] == -1 and r.meta["difficulty"]["max_value"] == as_difficulty(diff).max_value


def _verdict(steps):
    c = check(P, steps)
    return c.first_error, c.reasons[c.first_error] if c.first_error >= 0 else "ok"


@pytest.mark.parametrize(
    "steps, first_error, reason",
    [
        (["17 + 23 = 40", "40 * 4 = 170", "170 - 35 = 135", "The answer is 135."], 1, "arithmetic"),
        (["17 + 23 = 40", "41 * 4 = 164", "164 - 35 = 129", "The answer is 129."], 1, "underived_value"),
        (["17 + 23 = 40", "17 * 4 = 68", "68 - 35 = 33", "The answer is 33."], 1, "underived_value"),
        (["17 + 32 = 49", "49 * 4 = 196", "196 - 35 = 161", "The answer is 161."], 0, "wrong_operand"),
        (["17 + 23 = 40", "40 - 35 = 5", "The answer is 5."], 1, "wrong_operation"),  # skipped "* 4"
        (["17 + 23 = 40", "40 - 35 = 5", "5 * 4 = 20", "The answer is 20."], 1, "wrong_operation"),  # reordered
        (["17 - 23 = -6", "-6 * 4 = -24", "-24 - 35 = -59", "The answer is -59."], 0, "wrong_operation"),
        (["17 + 23 = 40", "blah blah", "160 - 35 = 125", "The answer is 125."], 1, "garbage"),
        (["", "40 * 4 = 160", "160 - 35 = 125", "The answer is 125."], 0, "garbage"),
        (["17 + 23 = 40 * 4 = 160", "160 - 35 = 125", "The answer is 125."], 0, "garbage"),
        (["17 + 23 = 40", "The answer is 40."], 1, "premature_answer"),
        (["17 + 23 = 40", "40 * 4 = 160", "160 - 35 = 125", "The answer is 160."], 3, "wrong_answer"),
        (REF + ["125 + 1 = 126"], 4, "extra_step"),
        (REF + ["The answer is 125."], 4, "extra_step"),
        (REF[:3] + ["125 + 0 = 125", "The answer is 125."], 3, "extra_operation"),
        (REF[:3] + ["So we are done"], 3, "garbage"),
        (["17 + 23 = 41", "41 * 4 = 164", "164 - 35 = 129", "The answer is 125."], 0, "arithmetic"),
        (["23 + 17 = 40", "4 * 40 = 160", "160 - 35 = 125", "The answer is 125."], -1, "ok"),  # + and * commute
        (["17+23=40.", "40 x 4 = 160", "160 − 35 = 125", "  the answer is 125"], -1, "ok"),
        (["17 + 23 = 40", "40 * 4 = 160", "35 - 160 = -125", "The answer is -125."], 2, "underived_value"),
    ],
)
def test_hand_written_solutions_get_the_true_first_error(steps, first_error, reason):
    assert _verdict(steps) == (first_error, reason)
    c = check(P, steps)
    assert c.labels == (
        [1.0] * len(steps) if first_error < 0 else [1.0] * first_error + [0.0] * (len(steps) - first_error)
    )


def test_errors_propagate_and_outcome_differs_from_process():
    # A wrong value carried on by correct steps makes only its own step wrong.
    c = check(P, ["17 + 23 = 40", "40 * 4 = 170", "170 - 35 = 135", "The answer is 135."])
    assert c.valid == (True, False, True, True) and not c.answer_correct and not c.correct
    # Right answer, wrong process: the outcome and process verdicts disagree.
    c = check(P, ["17 + 23 = 41", "41 * 4 = 164", "164 - 35 = 129", "The answer is 125."])
    assert c.answer_correct and not c.correct and c.valid == (False, True, True, False)
    # After garbage nothing is carried: the next step is judged on operator, operand, arithmetic.
    c = check(P, ["17 + 23 = 40", "???", "160 - 35 = 125", "The answer is 125."])
    assert c.valid == (True, False, True, True)
    assert check(P, ["17 + 23 = 40", "???", "160 - 36 = 124"]).reasons[2] == "wrong_operand"


def test_missing_final_answer_is_unfinished_not_wrong():
    c = check(P, REF[:3])
    assert c.first_error == -1 and c.labels == [1.0, 1.0, 1.0]
    assert not c.complete and not c.correct and c.answer is None and not c.answer_correct
    c = check(P, [])
    assert c.first_error == -1 and c.labels == [] and not c.correct
    assert check(P, REF).complete


def test_division_and_big_numbers():
    p = Problem(84, (("/", 7), ("+", 3)))
    assert check(p, ["84 / 7 = 12", "12 + 3 = 15", "The answer is 15."]).correct
    assert check(p, ["84 ÷ 7 = 12", "12 + 3 = 15", "The answer is 15."]).correct
    assert _first(p, ["84 / 5 = 16", "16 + 3 = 19", "The answer is 19."]) == (0, "wrong_operand")
    assert _first(p, ["84 / 7 = 12.5"]) == (0, "garbage")
    p2 = Problem(70, (("+", 14), ("/", 7)))  # 84 / 7 = 12
    assert check(p2, ["70 + 14 = 85", "85 / 7 = 12", "The answer is 12."]).valid == (False, False, True)
    assert check(p2, ["70 + 14 = 84", "84 / 7 = 12.0"]).reasons == ("ok", "garbage")
    huge = "9" * 29  # the result has the 30 digits allowed
    assert _first(P, [f"{huge} + 23 = {int(huge) + 23}"]) == (0, "underived_value")
    assert _first(P, ["1" * 31 + " + 23 = 40"]) == (0, "garbage")
    assert _first(P, ["17 + 23 = " + "4" * 5000]) == (0, "garbage")
    with pytest.raises(DataError, match="not exact"):
        check(parse_problem("Start at 10. Divide by 3. What is the result?"), ["10 / 3 = 3"])


def _first(p, steps):
    c = check(p, steps)
    return c.first_error, c.reasons[c.first_error]


def test_final_answer_rule():
    assert final_answer(REF) == 125
    assert final_answer(["The answer is 3.", "so the answer is -7!"]) == -7
    assert final_answer(["17 + 23 = 40"]) is None
    assert final_answer([]) is None
    assert final_answer(["The answer is " + "1" * 31]) is None  # never a truncated number


def _random_step(rng: random.Random) -> str:
    kind = rng.randrange(4)
    if kind == 0:  # character soup
        alphabet = "0123456789+-*/x×÷=. The answer is\n\t\x00é٣"
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))
    if kind == 1:  # well-formed but random arithmetic, sometimes huge or negative
        big = lambda: rng.choice([rng.randint(-50, 250), rng.randint(-(10**40), 10**40)])  # noqa: E731
        return f"{big()} {rng.choice('+-*/x÷')} {big()} = {big()}"
    if kind == 2:
        return f"The answer is {rng.randint(-(10**35), 10**35)}{rng.choice(['.', '', '!', ' .'])}"
    return rng.choice(["", " ", "=", "The answer is", "1 / 0 = 0", "0 / 0 = 0", "- - = ", "answer is answer is 5"])


def test_checker_never_raises_on_junk():
    rng = random.Random(0)
    problems = generate(50, seed=5, difficulty="hard")
    t0 = time.perf_counter()
    for i in range(4000):
        p = problems[i % len(problems)]
        steps = [_random_step(rng) for _ in range(rng.randrange(0, 9))]
        if rng.random() < 0.3:  # a correct prefix then junk
            steps = reference_solution(p)[: rng.randrange(0, len(p.ops) + 2)] + steps
        c = check(p, steps)
        assert len(c.valid) == len(c.reasons) == len(c.labels) == len(steps)
        assert -1 <= c.first_error < len(steps)
        assert c.first_error == -1 or not c.valid[c.first_error]
        assert not c.correct or steps == reference_solution(p) or all(c.valid)
        final_answer(steps)
    long = ["7" * 100_000, " " * 100_000 + "x", "answer is " * 10_000, "1 + " * 20_000]
    check(problems[0], long)
    assert time.perf_counter() - t0 < 15


# --------------------------------------------------------------------------- planted errors


@pytest.mark.parametrize("difficulty, n", [("medium", 1000), ("hard", 300), ("easy", 300)])
def test_planted_labels_agree_with_the_checker(difficulty, n):
    records = planted_errors(n, seed=21, difficulty=difficulty)
    assert sum(r.meta["first_error"] == -1 for r in records) == n // 2  # default share 50%, exact
    types = Counter(r.meta["error_type"] for r in records)
    assert set(types) - {None} == set(PLANTERS.names())
    expected_reasons = {
        "arithmetic": {"arithmetic"},
        "operand": {"wrong_operand"},
        "underived": {"underived_value"},
        "operator": {"wrong_operation"},
        "answer": {"wrong_answer"},
        "skip": {"wrong_operation", "wrong_operand", "premature_answer"},
        "reorder": {"wrong_operation", "wrong_operand"},
    }
    for r in records:
        p = parse_problem(r.problem)
        c = check(p, r.steps)
        fe = r.meta["first_error"]
        assert c.first_error == fe == r.first_error, (r.id, r.steps, c)
        assert r.labels == c.labels and r.correct == c.answer_correct
        assert r.reference == str(p.answer)
        if fe == -1:
            assert r.steps == reference_solution(p) and r.correct
            continue
        kind = r.meta["error_type"]
        if kind in ("operand", "underived") and p.values[fe] == p.ops[fe][1]:
            assert c.reasons[fe] in {"wrong_operand", "underived_value"}  # carried == operand: either slot
        else:
            assert c.reasons[fe] in expected_reasons[kind]
        assert r.steps[:fe] == reference_solution(p)[:fe]
        if kind not in ("skip", "reorder"):  # the error propagates: every later step is locally right
            assert all(c.valid[fe + 1 :]) and len(r.steps) == len(p.ops) + 1
        assert all(int(tok) >= 0 for s in r.steps for tok in s.replace(".", "").split() if tok.lstrip("-").isdigit())


def test_planted_sets_are_deterministic_and_shardable():
    a = [r.to_dict() for r in planted_errors(40, seed=3)]
    assert a == [r.to_dict() for r in planted_errors(40, seed=3)]
    assert a[25:] == [r.to_dict() for r in planted_errors(15, seed=3, start=25)]
    assert a != [r.to_dict() for r in planted_errors(40, seed=4)]


def test_planted_options():
    only = planted_errors(100, seed=2, types=["arithmetic"], correct_share=0.0)
    assert all(r.meta["error_type"] == "arithmetic" and r.meta["first_error"] >= 0 for r in only)
    assert all(r.meta["first_error"] == -1 for r in planted_errors(30, seed=2, correct_share=1.0))
    assert sum(r.meta["first_error"] == -1 for r in planted_errors(100, seed=2, correct_share=0.3)) == 30
    with pytest.raises(RecipeError, match="planted error type"):
        planted_errors(5, seed=2, types=["typo"])
    with pytest.raises(RecipeError, match="correct_share"):
        planted_errors(5, seed=2, correct_share=1.5)


def test_processbench_rows_have_exactly_its_fields():
    records = planted_errors(20, seed=9)
    rows = [to_processbench_row(r) for r in records]
    for r, row in zip(records, rows):
        assert tuple(row) == PROCESSBENCH_FIELDS
        assert row["label"] == r.meta["first_error"] and row["final_answer_correct"] == r.correct
        assert row["steps"] == r.steps and row["generator"] == "prmkit-arithmetic-planted"
    json.dumps(rows)
    assert to_processbench_row(to_record(P, REF[:1] + ["oops"]))["label"] == 1
    if not (SHARED / "processbench" / "gsm8k.json").exists():
        pytest.skip("shared ProcessBench data absent")
    real = json.loads((SHARED / "processbench" / "gsm8k.json").read_text())[0]
    assert set(real) == set(PROCESSBENCH_FIELDS)
    assert {type(v) for v in rows[0].values()} <= {type(v) for v in real.values()}


def test_records_of_model_output_carry_the_truth():
    r = to_record(P, ["17 + 23 = 40", "40 * 4 = 170", "170 - 35 = 135", "The answer is 135."])
    assert r.labels == [1.0, 0.0, 0.0, 0.0] and r.first_error == 1 and r.correct is False
    assert r.meta["error_reason"] == "arithmetic" and r.answer == "135" and r.reference == "125"
    back = Record.from_dict(json.loads(r.to_json()))
    assert check_record(back).first_error == 1
    assert to_record(parse_problem(P.text)).id.startswith("arith-")


# --------------------------------------------------------------------------- registry


def test_registry_and_common_interface():
    assert "arithmetic" in TASKS.names()
    task = get_task("arithmetic")
    assert task.name == "arithmetic" and task.step_style == "lines"
    with pytest.raises(RecipeError, match="did you mean 'arithmetic'"):
        get_task("arithmetik")
    problems = task.make_problems(5, seed=1, difficulty="easy")
    assert problems == generate(5, seed=1, difficulty="easy")
    assert task.problem_at(4, 1, "easy") == problems[4]
    p = problems[0]
    assert task.prompt(p) == prompt(p) == p.text + "\n"
    text = solution_text(task.reference_solution(p))
    assert task.split_steps("\n" + text + "\n\n") == split_steps(text) == reference_solution(p)
    assert task.check(p, task.reference_solution(p)).correct
    assert task.final_answer(task.reference_solution(p)) == str(p.answer)
    assert task.check_record(task.to_record(p)).correct
    assert task.parse_problem(p.text).ops == p.ops
    assert task.difficulty("hard") == DIFFICULTIES.get("hard")
    recs = task.planted_errors(6, seed=1, difficulty="easy", correct_share=0.5)
    assert tuple(task.to_processbench_row(recs[0])) == PROCESSBENCH_FIELDS
