"""The compiled text passes: ``curate.native._kernels``, built from ``_kernels.c`` beside this file at
install, or None.

The passes: dedup's word hashes, MinHash bins and exact keys; readability's line statistics, repeated
n-grams and junk runs; the lang check's cleaning of plain-ASCII texts; the format scan and the split at
``</think>``; the top-level keys of NDJSON lines and a key repeated at any depth
(``io.jsonl.read_ndjson``, whose reference is Polars' inference from every line). On x86 they find
boundaries 16 or 64 bytes at a time with SSE2. Every caller keeps a numpy/Polars reference of the pass
it hands to a kernel and runs it when this returns None: where no C compiler was at hand (the extension
is optional), or with ``CURATE_KERNELS=0`` in the environment (benchmarks time the references beside
the kernels in one run; tests compare them). The results are
the same either way (tests/native/test_kernels.py), so nothing downstream - the dedup index
fingerprint and the check cache keys included - depends on which one ran.
"""

from __future__ import annotations

import functools
import os
import warnings
from types import ModuleType

import numpy as np
import polars as pl
import pyarrow as pa

VERSION = 4  # KERNELS_VERSION in _kernels.c


@functools.cache
def _load() -> ModuleType | None:
    try:
        from curate.native import _kernels
    except ImportError:
        return None
    if getattr(_kernels, "VERSION", None) != VERSION:
        # An editable install whose extension was built from an older _kernels.c: its functions may take
        # other arguments. The references give the same results; a rebuild brings the speed back.
        warnings.warn(
            f"curate.native._kernels is version {getattr(_kernels, 'VERSION', 0)}, this curate needs {VERSION}: "
            "running the numpy/Polars references (rebuild with `pip install -e .`)",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    return _kernels


def kernels() -> ModuleType | None:
    """The compiled module, unless it is missing or ``CURATE_KERNELS=0`` turns it off."""
    if os.environ.get("CURATE_KERNELS", "1") == "0":
        return None
    return _load()


def string_buffer(s: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """(UTF-8 bytes, int64 offsets of each string, n + 1, the first 0) of a string column, zero-copy from
    Arrow where it can be; nulls are empty strings."""
    arr = s.to_arrow()
    if not pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.large_string())
    n = len(arr)
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int64, count=n + 1, offset=arr.offset * 8) if n else np.zeros(1, np.int64)
    lo, hi = int(offsets[0]), int(offsets[-1])
    data = np.frombuffer(bufs[2], dtype=np.uint8)[lo:hi] if hi > lo and bufs[2] is not None else np.zeros(0, np.uint8)
    return data, offsets - lo
