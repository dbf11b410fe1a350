"""Crashes on demand, for tests of what survives them: ``kill -9`` at a chosen call of a function."""

from __future__ import annotations

import os
import signal
from types import ModuleType
from typing import Any


def die_on_call(module: ModuleType, name: str, nth: int) -> None:
    """Replace ``module.name`` so that its ``nth`` call SIGKILLs this process (earlier calls run the real
    function): a real ``kill -9`` at a known point, e.g. half-way through a stage of per-shard calls."""
    real, calls = getattr(module, name), [0]

    def dying(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == nth:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)

    setattr(module, name, dying)
