"""Ctrl-C and SIGTERM held while a library imports, then delivered as a plain ``KeyboardInterrupt``
(``curate.__main__`` holds its own import window the same way: it runs before this package can load).

An interrupt that lands inside an import (Prefect's settings, pydantic's serializer, torch's loader)
comes back as some other exception with a traceback. Blocking the signals with ``pthread_sigmask`` is not
enough: the mask is per thread, and a thread started earlier (polars' pool, a logging worker) takes the
process-directed signal, after which the interpreter still runs the handler in the main thread, mid-import.
Python runs signal handlers only in the main thread, so a handler that only records is safe anywhere.

Outside those blocks an interrupt is a ``KeyboardInterrupt`` as usual, but a library may still turn it into
its own exception (pydantic's serializer does); ``stop_requested()`` lets the command line tell that apart
from a bug and print one line instead of a traceback.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_stop = threading.Event()


def stop_requested() -> bool:
    """Whether Ctrl-C or SIGTERM reached this process (through one of the handlers here)."""
    return _stop.is_set()


def interrupt(signum: int, frame: FrameType | None) -> None:
    """The handler: note the stop, then raise ``KeyboardInterrupt`` (SIGTERM included, so ``finally`` runs)."""
    _stop.set()
    raise KeyboardInterrupt(f"signal {signum}")


def install() -> None:
    """Ctrl-C through :func:`interrupt` where it would raise ``KeyboardInterrupt`` anyway (a SIGINT the user
    chose to ignore stays ignored); SIGTERM keeps its default, ending the process, unless a command asks."""
    main = threading.current_thread() is threading.main_thread()
    if main and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, interrupt)


@contextmanager
def held() -> Iterator[None]:
    """Record SIGINT/SIGTERM during the block; raise ``KeyboardInterrupt`` when it ends if one came."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def record(signum: int, frame: FrameType | None) -> None:
        _stop.set()
        received.append(signum)

    previous: dict[int, Any] = {s: signal.signal(s, record) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if received:
        raise KeyboardInterrupt(f"signal {received[0]}")


__all__ = ["STOP_SIGNALS", "held", "install", "interrupt", "stop_requested"]
