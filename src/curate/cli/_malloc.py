"""glibc malloc arenas of curate's own processes.

glibc gives a thread that finds the heap busy an arena of its own (up to 8 per core) and keeps what was
freed there for that arena. numpy arrays made in curate's worker threads (sketching, writing,
prefetching) left about 20 MB per shard behind this way. 1M tiny rows through ``curate check --checks
dedup``, peak RSS: 724-791 MB with glibc's default (16 arenas on 2 cores), 630-634 MB with this cap
(set when the command line starts, after ``curate``'s own imports), 551-565 MB with
``MALLOC_ARENA_MAX=2`` in the environment (which also covers arenas made during imports); same time.
Polars and Arrow allocate with their own allocators and are not affected. Set by the command line,
which spawned workers import too; never at library import, since a notebook's process belongs to its
owner. ``MALLOC_ARENA_MAX`` in the environment wins.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)
ARENAS = 2


def limit_arenas(n: int = ARENAS) -> bool:
    """Cap this process's malloc arenas at ``n``; False where it does not apply (not glibc, or the
    environment already says)."""
    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        return bool(ctypes.CDLL(None).mallopt(M_ARENA_MAX, n))
    except (OSError, AttributeError):  # no mallopt (musl): nothing to cap
        return False
