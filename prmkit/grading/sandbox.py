"""A hard time bound for symbolic comparisons: sympy runs in persistent worker processes.

Why processes and not math-verify's own timeouts: those use `signal.alarm`, which (1) raises
ValueError outside the main thread, so a grader called from a thread pool fails; (2) rounds to
whole seconds and is armed separately for parsing and for each verified pair, so one call could
take several seconds; (3) is only handled between Python bytecodes: C code that does not poll
for signals (GMP through gmpy2, which sympy uses when installed) runs on, and a process can
also thrash or freeze; and (4) replaces the host program's SIGALRM handler. A child process
can always be killed.

Why persistent workers: starting Python, importing sympy + math-verify and warming the LaTeX
parser costs about 1-2 s here, a comparison about 1-150 ms. Each worker is started once,
answers many requests over a pipe (JSON lines; a cached round trip takes under 1 ms) and is
killed only when it overruns its deadline. The pool keeps one warm spare (about 65 MB
resident): when a worker is killed the next call takes the spare at once instead of waiting
for a start-up it could not afford. Workers are plain `subprocess` children, not
`multiprocessing`, so nothing depends on the start method, on the caller's `__main__` being
importable, or on forking a process that holds threads.

Time accounting: a call never waits longer than its `timeout`, queueing for a busy worker
included. The one exception is the first worker of the process, whose start-up (bounded by
`startup_timeout`) is not charged to the call that triggered it; call `warm_up()` to pay it
ahead of time.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
# The worker's own soft timeout fires this share of the budget (at least 30 ms) before the caller
# gives up, so a slow-but-interruptible comparison answers False and its warm worker survives.
_SOFT_MARGIN = 0.1
_SOFT_MARGIN_MIN_S = 0.03
_RETRY_AFTER_FAILURE_S = 30.0


class _Worker:
    """One child process plus a reader thread that turns its stdout lines into replies."""

    def __init__(self, pool: SympyPool) -> None:
        self._pool = pool
        self._replies: queue.SimpleQueue[dict | None] = queue.SimpleQueue()
        self._next_id = 0
        self.ready = False
        env = dict(os.environ)
        env["PYTHONPATH"] = _PACKAGE_ROOT + os.pathsep + env.get("PYTHONPATH", "")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "prmkit.grading._worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        threading.Thread(target=self._read, name="prmkit-grader-reader", daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with contextlib.suppress(OSError, ValueError):  # the pipe closed: the worker died or was killed
            for line in self.proc.stdout:
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                if isinstance(msg, dict) and msg.get("ready"):
                    self.ready = True
                    self._pool._on_ready(self)
                elif isinstance(msg, dict):
                    self._replies.put(msg)
        self._replies.put(None)
        self._pool._on_exit(self)
        self._reap()

    def ask(self, pred: str, ref: str, deadline: float) -> bool | None:
        """The worker's verdict, or None when it did not answer before `deadline` (or died)."""
        self._next_id += 1
        left = deadline - time.monotonic()
        budget = left - max(_SOFT_MARGIN * left, _SOFT_MARGIN_MIN_S)
        request = {"id": self._next_id, "pred": pred, "ref": ref, "budget": max(budget, 0.001)}
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        except (OSError, ValueError):
            return None
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                msg = self._replies.get(timeout=remaining)
            except queue.Empty:
                return None
            if msg is None:
                return None
            if msg.get("id") == self._next_id:
                return bool(msg.get("ok"))

    def kill(self) -> None:
        """Send SIGKILL and return at once; the reader thread reaps the process when its pipe closes."""
        with contextlib.suppress(OSError):  # already gone
            self.proc.kill()

    def _reap(self) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


class SympyPool:
    """Hands warm workers to callers (one request at a time each), growing up to `max_workers`."""

    def __init__(self, max_workers: int = 4, startup_timeout: float = 60.0) -> None:
        self.max_workers = max_workers
        self.startup_timeout = startup_timeout
        self.kills = 0  # workers killed for overrunning a deadline
        self._cond = threading.Condition()
        self._idle: list[_Worker] = []
        self._workers: set[_Worker] = set()
        self._ever_ready = False
        self._failed_at: float | None = None
        self._pid = os.getpid()

    # --- worker life cycle (called with or without the lock held, as noted) ---
    def _spawn(self) -> None:
        """Start one worker; caller holds the lock."""
        try:
            self._workers.add(_Worker(self))
        except OSError as exc:
            self._failed_at = time.monotonic()
            log.error("cannot start the grading worker (%s); symbolic comparisons will return False", exc)

    def _on_ready(self, worker: _Worker) -> None:
        with self._cond:
            self._ever_ready = True
            self._failed_at = None
            if worker in self._workers:
                self._idle.append(worker)
            self._cond.notify_all()

    def _on_exit(self, worker: _Worker) -> None:
        with self._cond:
            if worker in self._workers and not worker.ready:
                self._failed_at = time.monotonic()
                log.error("the grading worker exited during start-up (is math-verify installed?)")
            self._workers.discard(worker)
            if worker in self._idle:
                self._idle.remove(worker)
            self._cond.notify_all()

    def _retire(self, worker: _Worker) -> None:
        """Kill a worker that overran (without waiting for it); start a new one if none is left."""
        with self._cond:
            self._workers.discard(worker)
            self.kills += 1
            if not self._workers:
                self._spawn()
        worker.kill()

    def _acquire(self, deadline: float) -> tuple[_Worker | None, bool]:
        """A ready worker (or None at the deadline), and whether the wait was the cold start."""
        with self._cond:
            cold = not self._ever_ready
            wait_until = max(deadline, time.monotonic() + self.startup_timeout) if cold else deadline
            while True:
                if self._idle:
                    worker = self._idle.pop()
                    if not self._idle and not self._starting() and len(self._workers) < self.max_workers:
                        self._spawn()  # a warm spare for the next caller, or for when this one hangs
                    return worker, cold
                if self._failed_at is not None and time.monotonic() - self._failed_at < _RETRY_AFTER_FAILURE_S:
                    return None, cold
                if len(self._workers) < self.max_workers and not self._starting():
                    self._spawn()
                remaining = wait_until - time.monotonic()
                if remaining <= 0:
                    return None, cold
                self._cond.wait(remaining)

    def _starting(self) -> bool:
        return any(not w.ready for w in self._workers)

    def _release(self, worker: _Worker) -> None:
        with self._cond:
            if worker in self._workers:
                self._idle.append(worker)
                self._cond.notify_all()

    # --- public ---
    def compare(self, pred: str, ref: str, timeout: float) -> bool | None:
        """math-verify's verdict within `timeout` seconds, or None when none came in time."""
        self._after_fork()
        start = time.monotonic()
        worker, cold = self._acquire(start + timeout)
        if worker is None:
            return None
        deadline = (time.monotonic() if cold else start) + timeout
        verdict = worker.ask(pred, ref, deadline)
        if verdict is None:
            self._retire(worker)
        else:
            self._release(worker)
        return verdict

    def warm_up(self, workers: int = 1) -> bool:
        """Start `workers` workers now (plus the spare) and wait until they are ready, or `startup_timeout` passes.

        Threads share the pool; a call that finds every worker busy waits inside its own budget,
        so graders running K threads should warm up K workers first.
        """
        self._after_fork()
        wanted = min(max(workers, 1), self.max_workers)
        until = time.monotonic() + self.startup_timeout
        with self._cond:
            self._failed_at = None  # an explicit warm-up is an explicit retry
            while len(self._workers) < wanted:
                before = len(self._workers)
                self._spawn()
                if len(self._workers) == before:
                    return False
            while len(self._idle) < wanted:
                remaining = until - time.monotonic()
                if remaining <= 0 or self._failed_at is not None:
                    return False
                self._cond.wait(remaining)
        worker, _ = self._acquire(time.monotonic())  # also starts the spare
        if worker is not None:
            self._release(worker)
        return worker is not None

    def close(self) -> None:
        with self._cond:
            workers, self._workers, self._idle = list(self._workers), set(), []
            self._ever_ready = False
        for worker in workers:
            worker.kill()

    def _after_fork(self) -> None:
        """A forked child must not share its parent's pipes: it starts its own workers."""
        if os.getpid() != self._pid:
            self.__init__(self.max_workers, self.startup_timeout)  # type: ignore[misc]


POOL = SympyPool()
atexit.register(POOL.close)
