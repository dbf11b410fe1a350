"""A small process pool for math verification, with a hard per-item timeout.

Why not ``concurrent.futures``: killing one stuck worker there breaks the whole pool. Here each worker is
a spawned, single-threaded process (SIGALRM works in it; spawn is safe when the parent has threads)
talking over its own pipe. The parent sends chunks of items and the worker answers item by item, so the
parent always knows which item is running and for how long. The soft (signal) timeout runs inside the
worker (see ``math_equiv.decide``); if an item is still running well after that (a C-level loop such
as a regex backtracking ignores signals), the parent kills the worker, records ``timeout`` for that item,
starts a replacement and re-queues the rest of the chunk.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import math
import multiprocessing as mp
import os
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

Item = tuple[str, tuple[str, ...]]  # (gold, candidates)


def _worker_main(conn: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    from curate.verify import math_equiv

    math_equiv.parse_gold("1")  # import math-verify/sympy before saying ready: not on an item's clock
    conn.send("ready")
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        timeout_s, items = msg
        for gold, cands in items:
            conn.send(math_equiv.decide(gold, cands, timeout_s))


@dataclass
class _Worker:
    proc: Any
    conn: Connection
    ready: bool = False
    pending: collections.deque[int] = field(default_factory=collections.deque)
    since: float = 0.0


class MathPool:
    """``workers`` spawned processes; ``run`` maps ``math_equiv.decide`` over items, in order."""

    def __init__(self, workers: int) -> None:
        self._ctx = mp.get_context("spawn")
        self._lock = threading.Lock()
        self._workers = [self._start() for _ in range(max(1, workers))]
        self.killed = 0  # workers replaced after a hard timeout or a crash

    def _start(self) -> _Worker:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_worker_main, args=(child,), daemon=True, name="curate-math")
        proc.start()
        child.close()
        return _Worker(proc, parent)

    def _replace(self, w: _Worker) -> _Worker:
        self.killed += 1
        w.proc.kill()
        w.proc.join(5)
        w.conn.close()
        return self._start()

    def run(self, items: Sequence[Item], timeout_s: float, hard_timeout_s: float | None = None) -> list[str]:
        """Verdicts (``math_equiv.Status`` strings) for ``items``; ``timeout`` for any that overran.

        ``timeout_s`` is the worker's own (signal) limit per item; ``hard_timeout_s`` (default: twice
        that, at least one second more) is when the parent gives up on the worker and kills it.
        """
        if hard_timeout_s is None:
            hard_timeout_s = timeout_s + max(1.0, timeout_s) if timeout_s > 0 else math.inf
        with self._lock:
            return self._run(items, timeout_s, hard_timeout_s)

    def _run(self, items: Sequence[Item], timeout_s: float, hard: float) -> list[str]:
        n, k = len(items), len(self._workers)
        out: list[str | None] = [None] * n
        # Gold affinity: items with the same gold go to the same worker, so each gold is parsed once
        # (a parse costs as much as the comparison). An idle worker steals from the longest queue.
        size = max(1, min(64, math.ceil(n / (4 * k))))
        groups: list[list[int]] = [[] for _ in range(k)]
        for i, (gold, _) in enumerate(items):
            groups[hash(gold) % k].append(i)
        queues = [collections.deque(g[j : j + size] for j in range(0, len(g), size)) for g in groups]
        done = 0
        while done < n:
            now = time.monotonic()
            for j, w in enumerate(self._workers):
                if w.ready and not w.pending and any(queues):
                    chunk = queues[j].popleft() if queues[j] else max(queues, key=len).pop()
                    w.conn.send((timeout_s, [items[i] for i in chunk]))
                    w.pending.extend(chunk)
                    w.since = now
            deadlines = [w.since + hard for w in self._workers if w.pending]
            wait_s = max(0.0, min(deadlines) - now) if deadlines and hard < math.inf else None
            ready = wait([w.conn for w in self._workers], timeout=wait_s)
            now = time.monotonic()
            for j, w in enumerate(self._workers):
                crashed = False
                if w.conn in ready:
                    try:
                        while w.conn.poll():
                            msg = w.conn.recv()
                            if msg == "ready":
                                w.ready = True
                                continue
                            out[w.pending.popleft()] = msg
                            done += 1
                            w.since = now
                    except (EOFError, OSError):
                        crashed = True
                        if not w.ready:
                            raise RuntimeError("a math verification worker died while starting") from None
                if w.pending and (crashed or now - w.since > hard):
                    out[w.pending.popleft()] = "timeout"
                    done += 1
                    if w.pending:
                        queues[j].appendleft(list(w.pending))
                    self._workers[j] = self._replace(w)
                elif crashed:
                    self._workers[j] = self._replace(w)
        return [s if s is not None else "timeout" for s in out]

    def close(self) -> None:
        for w in self._workers:
            with contextlib.suppress(OSError):
                w.conn.send(None)
        for w in self._workers:
            w.proc.join(2)
            if w.proc.is_alive():
                w.proc.kill()
            w.conn.close()
        self._workers = []


_POOLS: dict[int, MathPool] = {}
_POOLS_LOCK = threading.Lock()


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def get_pool(workers: int = 0) -> MathPool:
    """The process-wide pool with ``workers`` processes (0: one per available core), started lazily."""
    workers = workers or default_workers()
    with _POOLS_LOCK:
        pool = _POOLS.get(workers)
        if pool is None:
            pool = _POOLS[workers] = MathPool(workers)
        return pool


def pool_running(workers: int = 0) -> bool:
    """Whether ``get_pool(workers)`` would return an already started pool."""
    with _POOLS_LOCK:
        return (workers or default_workers()) in _POOLS


@atexit.register
def shutdown_pools() -> None:
    with _POOLS_LOCK:
        for pool in _POOLS.values():
            pool.close()
        _POOLS.clear()
