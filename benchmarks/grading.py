"""Grading throughput and agreement on real data, and the worst adversarial wall time.

Run: .venv/bin/python benchmarks/grading.py   (reads ../shared/data; exits with a message if absent)
"""

from __future__ import annotations

import collections
import json
import os
import random
import signal
import sys
import time
from pathlib import Path

from prmkit.grading import extract_answer, judge, sandbox, warm_up
from prmkit.grading.extract import DEFAULT_ORDER

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _run(name: str, pairs: list[tuple[str, str | None, str]], expect: list[bool] | None = None) -> None:
    """pairs: (text to extract from, or the answer itself when ref marks it, reference, mode)."""
    stages: collections.Counter[str] = collections.Counter()
    agree = 0
    start = time.perf_counter()
    for i, (text, ref, mode) in enumerate(pairs):
        answer = extract_answer(text) if mode == "extract" else text
        verdict = judge(answer, ref)
        stages[verdict.stage] += 1
        agree += verdict.equal == (expect[i] if expect else True)
    dt = time.perf_counter() - start
    share = ", ".join(f"{k} {v}" for k, v in stages.most_common())
    print(f"{name:<44} n={len(pairs):>5}  agree {agree / len(pairs):7.2%}  {len(pairs) / dt:9.0f} /s  ({share})")


def _processbench_rows() -> list[tuple[str, str, bool]]:
    """(solution text, gold answer, the experts' final-answer verdict) for every ProcessBench gsm8k and math
    solution whose problem has a GSM8K test or MATH-500 gold answer (512 of them)."""
    refs = {r["problem"].strip(): r["answer"] for r in _jsonl(DATA / "math500" / "test.jsonl")}
    refs.update(
        {r["question"].strip(): r["answer"].split("####")[-1].strip() for r in _jsonl(DATA / "gsm8k" / "test.jsonl")}
    )
    rows = [r for n in ("math", "gsm8k") for r in json.loads((DATA / "processbench" / f"{n}.json").read_text())]
    return [
        ("\n\n".join(r["steps"]), refs[r["problem"].strip()], r["final_answer_correct"])
        for r in rows
        if r["problem"].strip() in refs
    ]


def _agreement(grade, rows: list[tuple[str, str, bool]]) -> tuple[float, float]:
    start = time.perf_counter()
    agree = sum(grade(text, gold) == truth for text, gold, truth in rows)
    return agree / len(rows), len(rows) / (time.perf_counter() - start)


def _math_verify(text: str, gold: str) -> bool:
    from math_verify import parse, verify

    try:
        return bool(verify(parse(gold), parse(text)))
    except Exception:  # noqa: BLE001 - a crash is a "not equal" verdict, as a grader would count it
        return False


def _adversarial() -> dict[str, str]:
    rng = random.Random(0)
    return {
        "power tower 10^{10^{10^{10}}}": "10^{10^{10^{10}}}",
        "python tower 9**9**9**9": "9**9**9**9",
        "5000 nested braces": "{" * 5000 + "1" + "}" * 5000,
        "5000 nested parentheses": "(" * 5000 + "1" + ")" * 5000,
        "5000 nested fractions": "\\frac{1}{" * 5000 + "2" + "}" * 5000,
        "1 MiB of garbage": "".join(rng.choice("{}()[]\\$^*#!0123456789abx \n") for _ in range(1 << 20)),
        "150k unclosed \\boxed{": "\\boxed{" * 150_000,
        "\\frac{1}{0}": "\\frac{1}{0}",
        "control characters": "5\x00\x07\x1b[31m\x7f",
        "150k unclosed \\( (fallback)": "\\( 1 = " * 150_000,
        "150k '$1 = 2' (fallback)": "$1 = 2 " * 150_000,
        "40k 'answer answered answers'": "answer answered answers " * 40_000 + "is 5",
        "70k 'the answer is'": "the answer is " * 70_000,
        "170k 'has 1' in one sentence": "has 1 " * 170_000,
    }


def main() -> None:
    if not DATA.exists():
        sys.exit(f"shared data not found at {DATA}")
    start = time.perf_counter()
    warm_up()
    print(f"symbolic worker start-up (import + warm-up, once): {time.perf_counter() - start:.2f} s\n")

    gsm = _jsonl(DATA / "gsm8k" / "test.jsonl")
    gsm_pairs = [(r["answer"], r["answer"].split("####")[-1].strip(), "extract") for r in gsm]
    _run("GSM8K test: extract #### vs raw reference", gsm_pairs)
    math500 = _jsonl(DATA / "math500" / "test.jsonl")
    _run("MATH-500: extract \\boxed{} vs answer", [(r["solution"], r["answer"], "extract") for r in math500])
    shifted = [(a["answer"], b["answer"], "answer") for a, b in zip(math500, math500[1:] + math500[:1])]
    truth = [a == b for a, b, _ in shifted]
    _run("MATH-500: answer vs next record's (negatives)", shifted, truth)

    rows = _processbench_rows()
    print(
        f"\nProcessBench gsm8k + math solutions with a gold answer (n={len(rows)}): agreement with the experts' "
        "final_answer_correct"
    )
    graders = [
        (
            "prmkit (documented order: markers, last wins, then final expression)",
            lambda t, g: judge(extract_answer(t), g).equal,
        ),
        ("prmkit, markers only (fallback off)", lambda t, g: judge(extract_answer(t, fallback=False), g).equal),
        (
            "prmkit, markers + last_number (the old opt-in)",
            lambda t, g: judge(extract_answer(t, order=(*DEFAULT_ORDER, "last_number"), fallback=False), g).equal,
        ),
        ("plain math-verify: verify(parse(gold), parse(text))", _math_verify),
    ]
    for label, grade in graders:
        rate, speed = _agreement(grade, rows)
        print(f"  {label:<72} agree {rate:7.2%}  {speed:7.0f} /s")

    print("\nadversarial inputs (slowest of: extract, compare against '5', 'x+1' and itself):")
    worst = ("", 0.0)
    for name, text in _adversarial().items():
        calls = [lambda text=text: extract_answer(text)] + [
            (lambda p=p, r=r: judge(p, r)) for p, r in [(text, "5"), ("5", text), (text, "x+1"), (text, text)]
        ]
        slowest = 0.0
        for call in calls:
            start = time.perf_counter()
            call()
            slowest = max(slowest, time.perf_counter() - start)
        worst = max(worst, (name, slowest), key=lambda x: x[1])
        print(f"  {name:<32} {slowest * 1000:8.2f} ms")
    print(f"slowest adversarial call: {worst[0]} at {worst[1] * 1000:.1f} ms")

    for budget in (1.0, 0.5):
        start = time.perf_counter()
        sandbox.POOL.compare("{" * 14 + "1" + "}" * 14, "5", budget)  # about 5 s unbounded; guards bypassed
        took = time.perf_counter() - start
        print(f"guard bypassed, 14 nested braces sent to sympy with a {budget} s budget: {took:.3f} s")
    if hasattr(signal, "SIGSTOP"):  # a worker stuck where no signal reaches it: only a kill helps
        pool = sandbox.POOL
        until = time.monotonic() + 30
        while len(pool._idle) < 2 and time.monotonic() < until:  # the worker and its warm spare
            time.sleep(0.05)
        os.kill(pool._idle[-1].proc.pid, signal.SIGSTOP)
        start = time.perf_counter()
        verdict = judge("\\frac{\\pi}{3}", "\\pi/3")
        print(f"frozen worker (SIGSTOP), default 1 s budget: {time.perf_counter() - start:.3f} s -> {verdict.stage}")
        start = time.perf_counter()
        verdict = judge("\\frac{\\pi}{3}", "\\pi/3")
        print(f"next call, served by the spare: {time.perf_counter() - start:.3f} s -> {verdict}")
    print(f"workers killed for overrunning: {sandbox.POOL.kills}")


if __name__ == "__main__":
    main()
