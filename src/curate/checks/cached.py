"""Row checks per shard, each finished (shard, check) result kept on disk under its content key.

A shard is read once into ``read/<key>.parquet`` (its unreadable rows beside it in ``.bad.jsonl``);
each row check's result on it (the columns it adds and the reason codes it appends) goes to
``<check>/<key>.parquet``. Keys hash the shard's bytes, the check's options and the check's code
(:mod:`curate.checks.shards`), so a rerun after ``kill -9`` or after changing one check's options finds
every finished piece and recomputes only what is missing. Checks are pure and see only the input
columns, so one check's result never depends on another's: they combine in run order into exactly the
frame a sequential run gives. Every file is written to a temporary name and renamed into place.

:func:`run_shard` is the unit of work a worker runs (plain data in, plain data out: it pickles to Dask
or a process pool); :func:`shard_frames` streams the finished shards back, in input order.
"""

from __future__ import annotations

import os
import resource
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from curate.checks.base import REASONS, Check, ensure_reasons
from curate.checks.shards import CHECK_SHARD_BYTES, Shard, check_key, plan_shards, read_key
from curate.io.rows import BadRow, ReadConfig, fill_ids
from curate.schema import table

ADDED = "_added_reasons"
GIVEN = "_given_sample_id"  # the input's own sample_id (null where curate derived it from the content)


# Pieces of runs whose shards are computed in this process and whose cache is a scratch folder: they go
# from the worker thread to the writer through memory, not through lz4 files (path -> frame or bytes).
_MEMORY: dict[str, Any] = {}


class ShardCache:
    """Finished shard pieces under one folder: ``<stage>/<key>.parquet``. With ``memory``, pieces are
    put in this process's memory instead, and each is handed out once (``load`` takes it)."""

    def __init__(self, root: str | Path, memory: bool = False) -> None:
        self.root = Path(root)
        self.memory = memory

    def path(self, stage: str, key: str, suffix: str = ".parquet") -> Path:
        return self.root / stage / f"{key}{suffix}"

    def has(self, stage: str, key: str) -> bool:
        path = self.path(stage, key)
        return str(path) in _MEMORY or path.exists()

    def put(self, stage: str, key: str, df: pl.DataFrame) -> None:
        if self.memory:
            _MEMORY[str(self.path(stage, key))] = df
            return
        self._atomic(self.path(stage, key), lambda p: df.write_parquet(p, compression="lz4", statistics=False))

    def put_bytes(self, stage: str, key: str, suffix: str, data: bytes) -> None:
        if self.memory:
            _MEMORY[str(self.path(stage, key, suffix))] = data
            return
        self._atomic(self.path(stage, key, suffix), lambda p: p.write_bytes(data))

    def load(self, stage: str, key: str) -> pl.DataFrame:
        path = self.path(stage, key)
        held = _MEMORY.pop(str(path), None)
        return held if held is not None else pl.read_parquet(path)

    def load_bytes(self, stage: str, key: str, suffix: str) -> bytes:
        path = self.path(stage, key, suffix)
        held = _MEMORY.pop(str(path), None)
        return held if held is not None else path.read_bytes()

    def forget(self) -> None:
        """Drop the pieces under this folder still held in memory (a run that stopped early)."""
        prefix = str(self.root) + os.sep
        for k in [k for k in _MEMORY if k.startswith(prefix)]:
            _MEMORY.pop(k, None)

    @staticmethod
    def _atomic(path: Path, write: Any) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Host and pid and thread: workers of a cluster share the cache, and containers repeat pids.
        tmp = path.with_name(f".{path.name}.{socket.gethostname()}-{os.getpid()}-{threading.get_ident()}.tmp")
        try:
            write(tmp)
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()


@dataclass(frozen=True, slots=True)
class ShardJob:
    """Everything a worker needs for one shard (picklable)."""

    shard: Shard
    checks: tuple[Check[Any], ...]
    cache: str
    options: ReadConfig
    threads: int = 1  # checks that declare ``concurrent`` run on this many threads at once
    in_process: bool = False  # run by the process that writes the output: pieces stay in memory


@dataclass(slots=True)
class ShardDone:
    """What a worker did: rows read, pieces computed (``read`` and check names), seconds per piece."""

    index: int
    read_key: str
    keys: dict[str, str]
    rows: int = 0
    computed: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: float = 0.0


def read_shard(shard: Shard, options: ReadConfig) -> tuple[pl.DataFrame, list[BadRow]]:
    """All good rows of one shard (ids filled, ``reject_reasons`` present) and its unreadable rows."""
    from curate.io.jsonl import jsonl_batches
    from curate.io.parquet import parquet_batches

    bad: list[BadRow] = []
    path, schema = Path(shard.path), table("checked_sample")
    if shard.kind == "parquet":
        frames = list(parquet_batches(path, schema, options, bad.append))
    else:
        frames = list(jsonl_batches(path, schema, options, bad.append, span=shard.span))
    df = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()
    if df.height:
        given = df["sample_id"].cast(pl.String) if "sample_id" in df.columns else pl.lit(None, pl.String)
        df = ensure_reasons(fill_ids(df)).with_columns(given.alias(GIVEN))
    return df, bad


def _table_version() -> str:
    t = table("checked_sample")
    return f"{t.name}:{getattr(t, 'version', '')}:{','.join(t.names)}"


def run_check(check: Check[Any], base: pl.DataFrame, batch_rows: int) -> pl.DataFrame:
    """The columns ``check`` adds to ``base`` and the reason codes it appends (as ``_added_reasons``)."""
    parts = []
    for lo in range(0, base.height, batch_rows):
        batch = base.slice(lo, batch_rows)
        out = check.run(batch)
        new = [c for c in out.columns if c not in batch.columns or c in check.writes()]
        new = [c for c in new if c != REASONS]
        had = batch[REASONS].list.len()
        added = (
            pl.DataFrame({"o": out[REASONS], "n": had}).select(pl.col("o").list.slice(pl.col("n"))).to_series()
            if had.sum()
            else out[REASONS]
        )
        parts.append(pl.DataFrame([*out.select(new).get_columns(), added.alias(ADDED)]))
    return pl.concat(parts, how="vertical_relaxed")


def run_shard(job: ShardJob) -> ShardDone:
    """Read the shard and run each check whose result is not cached yet."""
    cache, shard = ShardCache(job.cache, memory=job.in_process), job.shard
    rk = read_key(shard, job.options, _table_version())
    done = ShardDone(shard.index, rk, {c.name: check_key(rk, c) for c in job.checks})
    base: pl.DataFrame | None = None
    if not cache.has("read", rk):
        t0 = time.perf_counter()
        base, bad = read_shard(shard, job.options)
        cache.put_bytes("read", rk, ".bad.jsonl", b"".join(b.to_json() + b"\n" for b in bad))
        cache.put("read", rk, base)
        done.computed.append("read")
        done.seconds["read"] = time.perf_counter() - t0
    todo = [c for c in job.checks if not cache.has(c.name, done.keys[c.name])]
    if todo and base is None:
        base = cache.load("read", rk)
    if todo:
        assert base is not None
        done.seconds.update(_run_checks(todo, base, job, cache, done.keys))
        done.computed += [c.name for c in todo]
    done.rows = base.height if base is not None else _rows(cache.path("read", rk))
    done.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return done


def _run_checks(
    checks: Sequence[Check[Any]], base: pl.DataFrame, job: ShardJob, cache: ShardCache, keys: dict[str, str]
) -> dict[str, float]:
    """Run ``checks`` on ``base`` and keep each result; seconds per check. With ``job.threads`` > 1 the
    checks that declare ``concurrent`` (pure Polars/numpy/zlib work, which releases the GIL) are shared
    between that many threads, this one included; the others run here, in order."""

    def one(check: Check[Any]) -> tuple[str, float]:
        t0 = time.perf_counter()
        cols = run_check(check, base, job.options.batch_rows) if base.height else pl.DataFrame()
        cache.put(check.name, keys[check.name], cols)
        return check.name, time.perf_counter() - t0

    shared = [c for c in checks if c.concurrent] if job.threads > 1 and len(checks) > 1 else []
    queue = iter(shared)
    lock = threading.Lock()

    def drain() -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        while True:
            with lock:
                check = next(queue, None)
            if check is None:
                return out
            out.append(one(check))

    with ThreadPoolExecutor(job.threads - 1 if shared else 1) as pool:
        helpers = [pool.submit(drain) for _ in range(job.threads - 1)] if shared else []
        seconds = dict(one(c) for c in checks if c not in shared)
        seconds.update(drain())
        for h in helpers:
            seconds.update(h.result())
    return seconds


def _rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)


def combine(base: pl.DataFrame, parts: Sequence[pl.DataFrame]) -> pl.DataFrame:
    """``base`` with each check's columns and reason codes, in run order (as running them in turn)."""
    if not base.height:
        return base
    adds = []
    for part in parts:
        if part.width:
            base = base.with_columns(part.drop(ADDED).get_columns())
            adds.append(part[ADDED])
    if adds:
        base = base.with_columns(pl.concat_list([pl.col(REASONS), *[pl.lit(a) for a in adds]]).alias(REASONS))
    return base


def shard_frames(
    dones: Sequence[ShardDone], checks: Sequence[Check[Any]], cache: str | Path
) -> Iterator[tuple[pl.DataFrame, list[BadRow]]]:
    """Each shard's checked rows and unreadable rows, in shard order, read back from the cache."""
    store = ShardCache(cache)
    for d in sorted(dones, key=lambda d: d.index):
        bad = [
            BadRow(**orjson.loads(line))
            for line in store.load_bytes("read", d.read_key, ".bad.jsonl").splitlines()
            if line
        ]
        base = store.load("read", d.read_key)
        parts = [store.load(c.name, d.keys[c.name]) for c in checks] if base.height else []
        yield combine(base, parts), bad


Executor = Callable[[Sequence[ShardJob]], Iterator[ShardDone]]


def local_executor(jobs: Sequence[ShardJob]) -> Iterator[ShardDone]:
    """Shards one after the other in this process (the caller prefetches one ahead in a thread)."""
    for job in jobs:
        yield run_shard(job)


@dataclass(frozen=True, slots=True)
class ShardOptions:
    """How inputs are cut and where finished pieces are kept (``cache=None``: a scratch folder beside
    the output, removed afterwards, so nothing is reused), and what runs the shards."""

    shard_bytes: int = CHECK_SHARD_BYTES
    cache: str | Path | None = None
    executor: Executor | None = None
    threads: int = 1  # per shard: concurrent checks share this many threads
    in_process: bool = False  # the executor runs shards in this process (pieces of a scratch cache stay in memory)


def plan_check_jobs(
    inputs: Sequence[str | Path],
    checks: Sequence[Check[Any]],
    cache: str | Path,
    *,
    read_options: ReadConfig | None = None,
    shard_bytes: int = CHECK_SHARD_BYTES,
    threads: int = 1,
    in_process: bool = False,
) -> list[ShardJob]:
    """One job per shard of ``inputs``: the row checks to run on it and where pieces are kept."""
    row_checks = tuple(c for c in checks if c.scope == "row")
    opts = read_options or ReadConfig()
    jobs = plan_shards(inputs, shard_bytes)
    return [ShardJob(s, row_checks, str(cache), opts, max(1, threads), in_process) for s in jobs]
