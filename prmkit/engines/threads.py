"""How many torch CPU threads an engine or the trainer uses: chosen, not left to torch's default.

Why: torch's default is one OpenMP thread per core, and its threads spin-wait for each other. Measured on a 2-core
machine with SmolLM2-135M-Instruct (hf engine, 8 GSM8K prompts x 2 samples x 32 tokens): idle, 2 threads gave
96 tokens/s and 1 thread 71; with one other busy process, 2 threads fell to 30 tokens/s while 1 thread kept 69.
So the default leaves one core to the rest of the machine: one fewer than the cores this process may use, at least
one (1 on a 2-core machine: 26% slower when idle, 2.3x faster when anything else runs). A recipe sets `threads`
to override; `PRMKIT_THREADS` overrides the default for every stage.
"""

from __future__ import annotations

import os


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_threads() -> int:
    env = os.environ.get("PRMKIT_THREADS", "").strip()
    if env.isdigit() and int(env) >= 1:
        return int(env)
    return max(1, usable_cores() - 1)


def set_cpu_threads(requested: int | None) -> int:
    """Set torch's intra-op threads to `requested` (None: the default above); returns the number set."""
    import torch

    n = requested if requested is not None else default_threads()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
