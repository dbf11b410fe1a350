"""glibc malloc arenas of curate's own processes, and the allocator Arrow uses in them.

glibc gives a thread that finds the heap busy an arena of its own (up to 8 per core) and keeps what was
freed there for that arena. numpy arrays made in curate's worker threads (sketching, writing,
prefetching) left about 20 MB per shard behind this way. 1M tiny rows through ``curate check --checks
dedup``, peak RSS: 724-791 MB with glibc's default (16 arenas on 2 cores), 630-634 MB with this cap
(set when the command line starts, after ``curate``'s own imports), 551-565 MB with
``MALLOC_ARENA_MAX=2`` in the environment (which also covers arenas made during imports); same time.
Polars and Arrow allocate with their own allocators and are not affected. Set by the command line,
which spawned workers import too; never at library import, since a notebook's process belongs to its
owner. ``MALLOC_ARENA_MAX`` in the environment wins.

Arrow's default pool (mimalloc in pyarrow's wheels) hands freed pages back to the kernel eagerly, so the
next batch's buffers are faulted in and zeroed again: on 20k 8 KB traces with every default check,
1.7-1.9 of ~9 CPU-seconds were the kernel's, mostly that. The command line moves Arrow to the system
allocator (glibc, arenas capped as above): 1.2 system CPU-seconds, peak RSS unchanged.
``ARROW_DEFAULT_MEMORY_POOL`` in the environment wins here too.
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


def arrow_system_pool() -> bool:
    """Arrow's allocations through glibc malloc for the rest of this process; False where the
    environment already chose a pool."""
    if "ARROW_DEFAULT_MEMORY_POOL" in os.environ:
        return False
    import pyarrow as pa

    pa.set_memory_pool(pa.system_memory_pool())
    return True
