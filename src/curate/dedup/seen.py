"""The ``seen`` stage of :mod:`curate.dedup.stages`: the run against the published-versions index, in one
pass over the index per run (not one per shard).

1. **query bands**: the bands :meth:`DedupIndex.query` would build for each shard (unsalted, exact key
   ``exact_raw``). For the global scope they are stage 1's band files; under ``scope="per-prompt"`` stage
   1 salts its bands, so the unsalted ones are written once per shard (``seen-bands/<key>.parquet``,
   sorted by band_hash).
2. **candidates**, one job per band-hash range: the run's query band rows of the range joined with the
   index's band rows of the range (a filtered scan of each version file: a version written sorted by
   band_hash prunes to its slice; an old unsorted one is read whole, still correct) ->
   ``seen-<parts>/<part>.parquet`` (doc, sample_id, dataset, exact).
3. **verify**: every candidate's estimated Jaccard (share of equal signature positions; 1.0 for an exact
   key match), the index signatures read in one streamed pass over the version sig files, the query
   signatures from the shards' ``.npy``; per document the best match picked as ``DedupIndex.query`` picks
   it -> ``seen.parquet`` (doc, dataset, sample_id) sorted by doc, only the documents with a hit.

Memory: a range holds its band rows (bounded by ``part_rows``); the verify step holds the candidate pairs
(documents that collide with the index) and one row group of index signatures. Every output is written
atomically and skipped when it exists, so a rerun resumes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from curate.checks.cached import ShardCache
from curate.dedup.buckets import _gather, _read_range, _SigFile, hash_range, in_range, part_count, write_sorted
from curate.dedup.core import DedupConfig
from curate.dedup.index import DedupIndex
from curate.dedup.lsh import EXACT_BAND, doc_bands
from curate.io.parquet import open_parquet

_CANDIDATES = {"doc": pl.Int64, "sample_id": pl.String, "dataset": pl.String, "exact": pl.Boolean}


def query_bands(run: Path, work: Path, keys: Sequence[str], cfg: DedupConfig) -> list[Path]:
    """Per shard, a band file (band_id, band_hash, row) sorted by band_hash holding exactly the rows
    :meth:`DedupIndex.query` builds for that shard."""
    cache = ShardCache(work)
    if cfg.scope != "per-prompt":  # stage 1 wrote them unsalted: the same rows
        return [cache.path("bands", k) for k in keys]
    p = cfg.index_params()
    paths = []
    for k in keys:
        path = run / "seen-bands" / f"{k}.parquet"
        if not path.exists():
            sig = np.load(cache.path("sigs", k, ".npy"))
            exact = pl.read_parquet(cache.path("rows", k), columns=["exact_raw"])["exact_raw"].to_numpy()
            write_sorted(doc_bands(sig, exact, p.bands, p.rows).rename({"doc": "row"}), path, "band_hash")
        paths.append(path)
    return paths


@dataclass(frozen=True, slots=True)
class SeenJob:
    """Step 2 for one band-hash range (picklable: runs on the workers)."""

    part: int
    parts: int
    run: str
    query: tuple[str, ...]  # the query band files, one per shard
    offsets: tuple[int, ...]
    index: tuple[str, ...]  # the index's band files, one per version


def index_range(files: Sequence[str], lo: int | None, hi: int | None, hashes: pl.Series) -> pl.DataFrame:
    """The index band rows with band_hash in [lo, hi) and among ``hashes``, every version (a filtered scan
    of each file: the range prunes row groups, the hashes keep the rows that can join small)."""
    keep = in_range(lo, hi) & pl.col("band_hash").is_in(hashes.unique().implode())
    return pl.concat([pl.scan_parquet(f).filter(keep) for f in files]).collect()


def seen_part(job: SeenJob) -> int:
    """Step 2 for one range (skipped when done); returns the number of candidate pairs."""
    path = Path(job.run) / f"seen-{job.parts}" / f"{job.part:05d}.parquet"
    if path.exists():
        return -1
    lo, hi = hash_range(job.part, job.parts)
    q = _read_range([Path(p) for p in job.query], job.offsets, lo, hi)
    out = pl.DataFrame(schema=_CANDIDATES)
    if q.height and job.index:
        q = q.select("band_id", "band_hash", (pl.col("row") + pl.col("_off")).alias("doc"))
        out = (
            index_range(job.index, lo, hi, q["band_hash"])
            .join(q, on=["band_id", "band_hash"])
            .group_by("doc", "sample_id", "dataset")
            .agg((pl.col("band_id") == EXACT_BAND).any().alias("exact"))
            .cast(_CANDIDATES)  # type: ignore[arg-type]
        )
    ShardCache._atomic(path, lambda p: out.write_parquet(p))
    return out.height


def seen_jobs(
    run: Path, work: Path, keys: Sequence[str], offsets: Sequence[int], cfg: DedupConfig, memory_limit: str
) -> list[SeenJob]:
    """The range jobs of step 2: as many ranges as the query and index band rows need (a rerun finds the
    same ranges)."""
    assert cfg.index_dir
    index = DedupIndex(cfg.index_dir, cfg.index_params())
    bands, _ = index.files()
    query = query_bands(run, work, keys, cfg)
    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in [*query, *bands])
    parts = part_count(rows, memory_limit)
    q, b = tuple(str(p) for p in query), tuple(str(p) for p in bands)
    return [SeenJob(i, parts, str(run), q, tuple(offsets), b) for i in range(parts)]


def resolve_seen(
    run: Path, work: Path, keys: Sequence[str], offsets: Sequence[int], cfg: DedupConfig, parts: int
) -> int:
    """Step 3 (skipped when ``seen.parquet`` exists): the best index match per document, as
    :meth:`DedupIndex.query` picks it (highest Jaccard, ties to the smallest dataset then sample_id; a hit
    only at >= threshold). Returns the number of documents seen."""
    out_path = run / "seen.parquet"
    if out_path.exists():
        return -1
    assert cfg.index_dir
    files = sorted((run / f"seen-{parts}").glob("*.parquet"))
    cand = pl.concat([pl.read_parquet(f) for f in files]) if files else pl.DataFrame(schema=_CANDIDATES)
    # a pair can collide in several ranges (different bands): one row per pair, exact if any band was
    cand = cand.group_by("doc", "sample_id", "dataset").agg(pl.col("exact").any()).sort("doc", "dataset", "sample_id")
    jac = _verify(cand, work, keys, offsets, cfg)
    best = (
        cand.with_columns(pl.Series("j", np.where(cand["exact"].to_numpy(), 1.0, jac)))
        .sort("doc", "j", "dataset", "sample_id", descending=[False, True, False, False], maintain_order=True)
        .unique("doc", keep="first", maintain_order=True)
        .filter(pl.col("j") >= cfg.threshold)
        .select("doc", "dataset", "sample_id")
    )
    write_sorted(best, out_path, "doc")
    return best.height


def _verify(
    cand: pl.DataFrame, work: Path, keys: Sequence[str], offsets: Sequence[int], cfg: DedupConfig
) -> np.ndarray:
    """Estimated Jaccard of each candidate pair (a sample id stored twice in a version: the higher one),
    from one streamed pass over the index's signature files."""
    jac = np.zeros(cand.height)
    if not cand.height:
        return jac
    assert cfg.index_dir
    _, sig_files = DedupIndex(cfg.index_dir, cfg.index_params()).files()
    cache = ShardCache(work)
    qsigs = [_SigFile(cache.path("sigs", k, ".npy")) for k in keys]
    offs = np.asarray(offsets, dtype=np.int64)
    for hit in _sig_hits(sig_files, cand.select("sample_id", "dataset", "doc").with_row_index("_c")):
        stored = np.frombuffer(b"".join(hit["sig"].to_list()), dtype=np.uint32).reshape(hit.height, -1)
        j = (stored == _gather(qsigs, offs, hit["doc"].to_numpy())).mean(axis=1)
        np.maximum.at(jac, hit["_c"].to_numpy().astype(np.int64), j)
    return jac


def _sig_hits(files: Sequence[Path], keyed: pl.DataFrame) -> Iterator[pl.DataFrame]:
    """The candidates (``keyed``: sample_id, dataset, ...) joined to their index signatures, a row group of
    the sig files at a time: its ids are read, its signatures only where a candidate is among them."""
    for f in files:
        pf = open_parquet(f)
        for g in range(pf.num_row_groups):
            ids = pl.from_arrow(pf.read_row_group(g, columns=["sample_id", "dataset"]))
            assert isinstance(ids, pl.DataFrame)
            hit = ids.with_row_index("_r").join(keyed, on=["sample_id", "dataset"])
            if hit.height:
                sig = pl.from_arrow(pf.read_row_group(g, columns=["sig"]).column("sig").take(hit["_r"].to_numpy()))
                assert isinstance(sig, pl.Series)
                yield hit.with_columns(sig.alias("sig"))


def seen_columns(run: Path, offset: int, n: int) -> tuple[pl.Series, pl.Series]:
    """``dedup_seen_in`` and ``dedup_seen_sample_id`` of documents ``offset .. offset + n`` (null where the
    document matches nothing in the index), read from their range of ``seen.parquet``."""
    d = pl.col("doc")
    hits = pl.scan_parquet(run / "seen.parquet").filter((d >= offset) & (d < offset + n)).collect()
    at = hits["doc"].to_numpy() - offset
    ds = pl.Series("dedup_seen_in", [None] * n, pl.String).scatter(at, hits["dataset"])
    sid = pl.Series("dedup_seen_sample_id", [None] * n, pl.String).scatter(at, hits["sample_id"])
    return ds, sid
