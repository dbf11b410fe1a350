"""Inputs cut into shards, each named by its content: the unit of caching, resuming and fanning out.

A Parquet input (a ledger shard) is one shard. A JSONL input is cut into slices of about
``shard_bytes``, each ending just after a newline, so a slice holds whole lines and keeps the line
numbers of the file (quarantine entries and ``input_line`` are the same as reading the file whole).
One streaming pass over each file hashes every slice (xxh3-128) and counts its lines; nothing but the
current chunk is held.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import orjson
import xxhash

from curate.io.rules import InputError, ReadConfig

DEFAULT_SHARD_BYTES = 64 << 20
# ``curate dedup``'s shards: two are sketched at a time in one process, so 32 MB keeps both threads busy
# to the end (150k documents of 300 words, 312 MB: the stage 1.85 -> 1.75 s) and halves what they hold
# (peak RSS 750 -> 540 MB).
DEDUP_SHARD_BYTES = 32 << 20
# ``curate check``'s shards: smaller, so that a few hundred MB of input still keep every worker busy
# (three 64 MB shards on two workers leave one idle for a third of the run).
CHECK_SHARD_BYTES = 16 << 20
DEFAULT_SHARD_ROWS = 100_000
_CHUNK = 8 << 20
_JSONL = (".jsonl", ".json", ".ndjson")
_PARQUET = (".parquet", ".pq")


@dataclass(frozen=True, slots=True)
class Shard:
    """One slice of one input: bytes ``[start, end)`` of ``path``, whose first line is ``first_line``."""

    index: int
    path: str  # as given: it becomes the rows' ``input_file``
    kind: Literal["jsonl", "parquet"]
    start: int
    end: int
    first_line: int
    digest: str  # xxh3-128 of the slice's bytes

    @property
    def span(self) -> tuple[int, int, int]:
        return self.start, self.end, self.first_line

    @property
    def nbytes(self) -> int:
        return self.end - self.start


def _cuts(f: Any, size: int, shard_bytes: int) -> list[int]:
    """Byte offsets just after the first newline at or past each multiple of ``shard_bytes``."""
    cuts = [0]
    target = shard_bytes
    while target < size:
        f.seek(max(target - 1, cuts[-1]))
        pos = f.tell()
        while True:  # find the next newline without holding an over-long line
            chunk = f.read(1 << 20)
            if not chunk:
                pos = size
                break
            nl = chunk.find(b"\n")
            if nl >= 0:
                pos += nl + 1
                break
            pos += len(chunk)
        if pos >= size:
            break
        if pos > cuts[-1]:
            cuts.append(pos)
        target = pos + shard_bytes
    cuts.append(size)
    return cuts


def _spans(f: Any, cuts: list[int], shard_rows: int) -> list[tuple[int, int, str, int]]:
    """(start, end, digest, newlines) of each span: the spans between ``cuts``, cut again after every
    ``shard_rows``-th line, each hashed (xxh3-128) and its lines counted, in one read of the file.

    One chunk buffer and one newline mask are reused for the whole file: a fresh 8 MB ``bytes`` per read
    and a fresh mask per comparison were page faults on new memory, most of this pass's time (312 MB:
    0.17-0.23 s -> about 0.08 s)."""
    out: list[tuple[int, int, str, int]] = []
    buf = bytearray(min(_CHUNK, max(cuts[-1], 1)))
    view, mask = memoryview(buf), np.empty(len(buf), dtype=bool)
    for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
        f.seek(lo)
        start, pos, lines, h = lo, lo, 0, xxhash.xxh3_128()
        while pos < hi:
            got = f.readinto(view[: min(len(buf), hi - pos)])
            if not got:
                break
            chunk = view[:got]
            nl = np.equal(np.frombuffer(buf, np.uint8, got), 10, out=mask[:got])  # b"\n", ~3x bytes.count
            n = int(np.count_nonzero(nl))
            i = used = 0  # bytes and newlines of this chunk that went into spans closed here
            if lines + n >= shard_rows:  # a cut falls in this chunk
                ends = np.flatnonzero(nl) + 1
                k = shard_rows - lines
                while k <= n and pos + int(ends[k - 1]) < hi:
                    cut = int(ends[k - 1])
                    h.update(chunk[i:cut])
                    out.append((start, pos + cut, h.hexdigest(), shard_rows))
                    start, i, used, h = pos + cut, cut, k, xxhash.xxh3_128()
                    k += shard_rows
            lines = (lines if not used else 0) + n - used
            h.update(chunk[i:])
            pos += got
        out.append((start, hi, h.hexdigest(), lines))
    return out


def _hash_spans(f: Any, cuts: list[int]) -> list[tuple[str, int]]:
    """(digest, newlines) of each span between consecutive cuts."""
    return [(digest, lines) for _, _, digest, lines in _spans(f, cuts, 1 << 62)]


def plan_shards(
    inputs: Sequence[str | Path], shard_bytes: int = DEFAULT_SHARD_BYTES, shard_rows: int = DEFAULT_SHARD_ROWS
) -> list[Shard]:
    """The shards of ``inputs``, in input order: JSONL slices of at most about ``shard_bytes`` and at most
    ``shard_rows`` lines (tiny rows must not make a shard huge in rows). Raises InputError for an input
    that cannot be read."""
    shards: list[Shard] = []
    for p in inputs:
        path = Path(p)
        if not path.exists():
            raise InputError(f"{path}: no such file")
        if path.is_dir():
            raise InputError(f"{path}: is a directory")
        suffix = path.suffix.lower()
        if suffix not in _JSONL + _PARQUET:
            raise InputError(f"{path}: unknown format (expected .jsonl or .parquet)")
        try:
            with path.open("rb") as f:
                size = path.stat().st_size
                if suffix in _PARQUET:
                    ((digest, _),) = _hash_spans(f, [0, size])
                    shards.append(Shard(len(shards), str(p), "parquet", 0, size, 1, digest))
                    continue
                line = 1
                for lo, hi, digest, lines in _spans(f, _cuts(f, size, max(1, shard_bytes)), max(1, shard_rows)):
                    shards.append(Shard(len(shards), str(p), "jsonl", lo, hi, line, digest))
                    line += lines
        except PermissionError as e:
            raise InputError(f"{path}: cannot read ({e.strerror})") from e
    return shards


def _h(*parts: Any) -> str:
    return xxhash.xxh3_128_hexdigest(orjson.dumps(parts, default=str, option=orjson.OPT_SORT_KEYS))


def source_version(*objs: Any) -> str:
    """A hash of the source files that define ``objs`` (classes, functions or modules): any edit to
    them changes it. An object's ``version`` attribute, where set, is included too."""
    h = hashlib.blake2b(digest_size=16)
    for obj in objs:
        src = inspect.getsourcefile(obj) if not isinstance(obj, str) else obj
        h.update(Path(src or "").read_bytes() if src else b"")
        h.update(str(getattr(obj, "version", "")).encode())
    return h.hexdigest()


def read_key(shard: Shard, options: ReadConfig, table_version: str) -> str:
    """What reading a shard yields depends on its bytes, its name and first line (they are in the
    rows), the read options that change rows, the table and the reader's code."""
    import curate.checks.cached
    import curate.io.jsonl
    import curate.io.parquet
    import curate.io.rows
    import curate.io.rules

    code = source_version(curate.io.jsonl, curate.io.parquet, curate.io.rows, curate.io.rules, curate.checks.cached)
    return _h(
        "read",
        shard.digest,
        shard.kind,
        shard.path,
        shard.first_line,
        options.max_line_bytes,
        list(options.required),
        table_version,
        code,
    )


def config_hash(config: Any) -> str:
    return _h(asdict(config) if hasattr(config, "__dataclass_fields__") else config)


@functools.cache
def code_version(cls: type) -> str:
    """The code version of a check: its ``version`` attribute, if any, its declaration, and a hash of
    every source file of the package that defines it (helpers in sibling modules count) and of the
    check base."""
    import curate.checks.base

    src = inspect.getsourcefile(cls)
    files = sorted(Path(src).parent.glob("*.py")) if src else []
    return _h(
        str(getattr(cls, "version", "")),
        repr(cls.decl()),  # type: ignore[attr-defined]
        source_version(curate.checks.base, *(str(f) for f in files)),
    )


def check_key(read: str, check: Any) -> str:
    """A (shard, check) result depends on the shard as read, the check's name, options and code."""
    cls: Any = type(check)  # a class is hashable; mypy cannot tell for type[Any]
    return _h("check", read, check.name, config_hash(check.config), code_version(cls))
