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


def _processbench(order: tuple[str, ...]) -> tuple[float, int, float]:
    refs = {r["problem"].strip(): r["answer"] for r in _jsonl(DATA / "math500" / "test.jsonl")}
    refs.update(
        {r["question"].strip(): r["answer"].split("####")[-1].strip() for r in _jsonl(DATA / "gsm8k" / "test.jsonl")}
    )
    rows = [r for n in ("math", "gsm8k") for r in json.loads((DATA / "processbench" / f"{n}.json").read_text())]
    rows = [r for r in rows if r["problem"].strip() in refs]
    start = time.perf_counter()
    agree = sum(
        judge(extract_answer("\n\n".join(r["steps"]), order=order), refs[r["problem"].strip()]).equal
        == r["final_answer_correct"]
        for r in rows
    )
    return agree / len(rows), len(rows), len(rows) / (time.perf_counter() - start)


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

    for label, order in [("default order", DEFAULT_ORDER), ("+ last_number", (*DEFAULT_ORDER, "last_number"))]:
        rate, n, speed = _processbench(order)
        print(f"ProcessBench outputs vs final_answer_correct ({label}): n={n}  agree {rate:.2%}  {speed:.0f} /s")

    print("\nadversarial inputs (slowest of: extract, compare against '5', 'x+1' and itself):")
    worst = ("", 0.0)
    for name, text in _adversarial().items():
        calls = [lambda: extract_answer(text)] + [
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
