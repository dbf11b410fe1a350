"""Dedup as four explicit stages, each one's output on disk, so a crash resumes at the stage it was in.

1. **signatures** (per shard, in parallel): read the shard, sketch it (MinHash + exact key), write its
   band table (``bands/<key>.parquet``: band_id, band_hash, row), its signatures (``sigs/<key>.npy``)
   its per-row facts (``rows/<key>.parquet``: id, keep-rule keys, exact keys) and its parsed rows
   (``parsed/<key>.parquet``, so the input is parsed once). The key hashes the
   shard's bytes, the dedup settings that change signatures and the code, so a finished shard is reused.
2. **buckets** (per band-hash range, in parallel): candidate edges (chain + star per bucket), verified
   by estimated Jaccard; 3. **components** over the verified edges only: see :mod:`curate.dedup.buckets`.
   Stage 1 writes each band table sorted by hash, so a range reads only its part of every shard.
   With an index of published versions, **seen** (per band-hash range, then once) matches the whole run
   against it in one pass over the index -> ``seen.parquet``: see :mod:`curate.dedup.seen`.
4. **marks** (per shard, in parallel): each shard's rows with their dedup columns and reason codes, and
   ``dedup.seen`` from ``seen.parquet`` -> ``out/part-<i>.parquet``.

Memory per process is bounded by the shard (stages 1, 4), the band-hash range (stage 2) or the number of
documents that have a duplicate (stage 3); the coordinator holds O(shards + ranges), never per-row
arrays. Stages 2-4 live under ``run/<key>``, the key of every shard's stage-1 key and the settings, so
another input or setting never reuses them.
"""

from __future__ import annotations

import dataclasses
import resource
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from curate.checks.base import REASONS
from curate.checks.cached import ShardCache
from curate.checks.shards import Shard, _h, source_version
from curate.dedup.buckets import write_sorted
from curate.dedup.core import DedupConfig, sketch_frame
from curate.dedup.lsh import doc_bands
from curate.dedup.minhash import mix64
from curate.dedup.normalize import hash_strings
from curate.io.jsonl import read_ndjson

Mapper = Callable[[Callable[[Any], Any], Sequence[Any], str], Iterator[Any]]


def local_map(fn: Callable[[Any], Any], jobs: Sequence[Any], stage: str) -> Iterator[Any]:
    for job in jobs:
        yield fn(job)


def signatures_on_threads(threads: int = 2) -> Mapper:
    """A mapper for one process that runs the signature stage's shards ``threads`` at a time: reading a
    shard (Polars), sketching it (compiled, GIL-free) and writing its pieces (Arrow) barely hold the GIL,
    so a second shard fills the time the first spends in one-threaded parts (150k documents: the stage
    2.4 s -> 2.1 s). The price is a shard's memory per extra thread, so ``curate dedup`` uses it and the
    dedup inside ``curate check`` (which runs after the checks, at the run's peak) does not."""

    def fan(fn: Callable[[Any], Any], jobs: Sequence[Any], stage: str) -> Iterator[Any]:
        if stage != "signatures" or threads <= 1 or len(jobs) <= 1:
            yield from local_map(fn, jobs, stage)
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(threads, len(jobs)), thread_name_prefix="dedup-signatures") as pool:
            yield from pool.map(fn, jobs)

    return fan


@dataclass(frozen=True, slots=True)
class DedupJob:
    shard: Shard
    cfg: DedupConfig
    work: str
    sample_shaped: bool
    offset: int = 0  # the shard's first document number (stage 4)
    run: str = ""  # the run folder (stage 4)
    key: str = ""  # the shard's stage-1 key (stage 4: taken from stage 1, never recomputed mid-run)
    parts: int = 1  # band-hash ranges of stage 2 (stage 4 reads their per-document best Jaccard)
    marks_only: bool = False  # the run writes only the dedup columns: the parsed copy keeps no texts


@dataclass(slots=True)
class StageDone:
    index: int
    key: str
    rows: int = 0
    bad: int = 0
    computed: bool = False
    seconds: float = 0.0
    peak_rss_mb: float = 0.0


def _sig_settings(cfg: DedupConfig) -> dict[str, Any]:
    skip = {"index_dir", "threads", "batch_docs", "threshold", "near", "keep", "prefer_accepted", "fp_weight"}
    return {k: v for k, v in dataclasses.asdict(cfg).items() if k not in skip} | {"bands": cfg.band_rows()}


def sig_key(job: DedupJob) -> str:
    import curate.dedup.buckets
    import curate.dedup.minhash
    import curate.dedup.normalize
    import curate.dedup.words

    s = job.shard
    return _h(
        "dedup-sig",
        s.digest,
        s.path,
        s.first_line,
        job.sample_shaped,
        job.marks_only,
        _sig_settings(job.cfg),
        job.cfg.keep,
        job.cfg.score_column,
        job.cfg.prefer_accepted,
        source_version(
            curate.dedup.minhash, curate.dedup.normalize, curate.dedup.words, curate.dedup.buckets, __file__
        ),
    )


def read_rows(shard: Shard, text_column: str, sample_shaped: bool) -> tuple[pl.DataFrame, int]:
    """A shard's rows (sample-shaped inputs through the quarantining reader, ids filled) and the number
    of unreadable rows skipped."""
    if sample_shaped:
        from curate.io.jsonl import jsonl_batches
        from curate.io.parquet import parquet_batches
        from curate.io.rows import ReadConfig, ReadStats, fill_ids
        from curate.schema import table

        stats, opts, path = ReadStats(), ReadConfig(required=(text_column,)), Path(shard.path)
        frames = list(
            parquet_batches(path, table("sample"), opts, stats.bad)
            if shard.kind == "parquet"
            else jsonl_batches(path, table("sample"), opts, stats.bad, span=shard.span)
        )
        df = (
            pl.concat(frames, how="diagonal_relaxed")
            if frames
            else pl.DataFrame({text_column: []}, schema={text_column: pl.String})
        )
        return (fill_ids(df) if "prompt" in df.columns and df.height else df), stats.rows_bad
    if shard.kind == "parquet":
        return pl.read_parquet(shard.path), 0
    with open(shard.path, "rb") as f:
        f.seek(shard.start)
        data = f.read(shard.nbytes)
    # every line decides the schema, not the first hundred
    return (read_ndjson(data) if data.strip() else pl.DataFrame()), 0


def _salt(df: pl.DataFrame, cfg: DedupConfig) -> np.ndarray | None:
    if cfg.scope != "per-prompt":
        return None
    if "prompt_id" not in df.columns:
        from curate.checks.base import ConfigError

        raise ConfigError("dedup: scope=per-prompt needs a prompt_id column")
    return hash_strings(df["prompt_id"].cast(pl.String).fill_null(""))


def sign_shard(job: DedupJob) -> StageDone:
    """Stage 1 for one shard (skipped when its outputs exist)."""
    t0, key, cache = time.perf_counter(), sig_key(job), ShardCache(job.work)
    done = StageDone(job.shard.index, key)
    if cache.has("rows", key):
        done.rows = pq_rows(cache.path("rows", key))  # the footer has it
        return done
    cfg = job.cfg
    df, done.bad = read_rows(job.shard, cfg.text_column, job.sample_shaped)
    n = df.height
    sig, exact = sketch_frame(df, cfg) if n else (np.zeros((0, cfg.num_perm), np.uint32), np.zeros(0, np.uint64))
    salt = _salt(df, cfg) if n else None
    keyed = mix64(exact ^ mix64(salt)) if salt is not None else exact
    b, r = cfg.band_rows()
    bands = doc_bands(sig, keyed, b, r, salt).rename({"doc": "row"})
    rank_cols = _keep_order_inputs(df, cfg)
    ids = df["sample_id"].cast(pl.String) if "sample_id" in df.columns else None
    facts = pl.DataFrame({"exact": keyed.view(np.int64), "exact_raw": exact.view(np.int64), **rank_cols})
    if ids is not None:
        facts = facts.with_columns(ids.alias("sample_id"))
    path = cache.path("sigs", key, ".npy")
    cache._atomic(path, lambda p: np.save(p.open("wb"), sig))
    write_sorted(bands, cache.path("bands", key), "band_hash")  # sorted: stage 2 reads one hash range
    # stage 4 reads the rows from here (the input is parsed once); uncompressed: 2.5x faster to write.
    # A run that writes only the dedup columns (curate check's staged dedup) keeps the ids and codes
    # stage 4 reads, not a second copy of every text (1 GB of traces: 0.9 of its 4.3 s).
    parsed = (
        df.select([c for c in ("sample_id", REASONS) if c in df.columns] or [pl.lit(0, pl.Int8).alias("_row")])
        if job.marks_only
        else df
    )
    ShardCache._atomic(cache.path("parsed", key), lambda p: parsed.write_parquet(p, compression="uncompressed"))
    cache.put("rows", key, facts)  # written last: it marks the shard done
    done.rows, done.computed = n, True
    done.seconds = time.perf_counter() - t0
    done.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return done


def _keep_order_inputs(df: pl.DataFrame, cfg: DedupConfig) -> dict[str, Any]:
    """The columns the keep rule ranks by (so stage 3 never needs the texts)."""
    out: dict[str, Any] = {}
    if cfg.keep == "shortest":
        out["len"] = df[cfg.text_column].cast(pl.String).str.len_chars().fill_null(0).to_numpy()
    elif cfg.keep == "best_score" and cfg.score_column in df.columns:
        out["score"] = df[cfg.score_column].cast(pl.Float64).fill_null(float("-inf")).to_numpy()
    if cfg.prefer_accepted and REASONS in df.columns:
        out["rejected"] = (df[REASONS].list.len().fill_null(0).to_numpy() > 0).astype(np.int8)
    return out


def pq_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)
