"""A persistent near-duplicate index across dataset versions.

A directory holds, per published ``dataset@version``, a Parquet band table
``bands/<dataset>@<version>.parquet`` (band_id, band_hash, sample_id, dataset) - band_id ``-1`` carries
the exact-duplicate key - and ``sigs/<dataset>@<version>.parquet`` (sample_id, dataset, sig) so that band
collisions are verified with the estimated Jaccard, like within a run. ``index.json`` pins the
parameters (permutations, n-gram, scheme, seed, bands, hash fingerprint): a query with other
parameters is an error, never a silent miss. The index is global (no per-prompt scope): a published
sample must not come back in a later version under any prompt.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from curate.dedup.lsh import EXACT_BAND, doc_bands
from curate.dedup.normalize import hash_fingerprint
from curate.errors import CurateError
from curate.io.files import atomic_path, sweep_tmp_beside, write_bytes_atomic

__all__ = ["EXACT_BAND", "DedupIndex", "IndexHits", "IndexMismatch", "IndexParams"]


class IndexMismatch(CurateError, ValueError):
    """The index on disk does not match the parameters it is queried with."""


@dataclass(frozen=True, slots=True)
class IndexParams:
    num_perm: int
    ngram: int
    scheme: str
    seed: int
    bands: int
    rows: int
    fingerprint: str = ""

    def __post_init__(self) -> None:
        if not self.fingerprint:
            object.__setattr__(self, "fingerprint", hash_fingerprint())


@dataclass(frozen=True, slots=True)
class IndexHits:
    """Per query row: the index entry it collides with (null where none) and the Jaccard estimate."""

    dataset: list[str | None]
    sample_id: list[str | None]
    jaccard: np.ndarray


def _safe(tag: str) -> str:
    if "/" in tag or tag.startswith(".") or not tag:
        raise ValueError(f"bad dataset tag {tag!r} (expected name@version)")
    return tag


class DedupIndex:
    """Band tables of published versions, loaded in memory for querying."""

    def __init__(self, path: str | Path, params: IndexParams) -> None:
        self.path = Path(path)
        self.params = params
        meta = self.path / "index.json"
        if meta.exists():
            stored = IndexParams(**json.loads(meta.read_text())["params"])
            if stored != params:
                pairs = [
                    (f.name.replace("_", "-"), getattr(params, f.name), getattr(stored, f.name))
                    for f in dataclasses.fields(stored)
                ]
                diff = ", ".join(f"{name} {mine} (index: {theirs})" for name, mine, theirs in pairs if mine != theirs)
                raise IndexMismatch(
                    f"{self.path}: the index was built with other settings: {diff}; "
                    "use the index's settings or a new --index-dir"
                )
        self._bands: pl.DataFrame | None = None
        self._sigs: pl.DataFrame | None = None

    # ---- writing -------------------------------------------------------------------------------------
    def add(self, tag: str, sample_ids: list[str] | pl.Series, sig: np.ndarray, exact: np.ndarray) -> int:
        """Record the samples of a published version; returns the number of rows indexed."""
        return self.add_parts(tag, [(sample_ids, sig, exact)])

    def add_parts(self, tag: str, parts: Iterable[tuple[list[str] | pl.Series, np.ndarray, np.ndarray]]) -> int:
        """Record a published version given in parts (one per shard): one part is in memory at a time. The
        signatures are appended as a row group per part; the band rows go sorted to a run file per part,
        merged at the end one band-hash range at a time into a band table sorted by band_hash with small
        row groups (so a range read prunes). Both tables appear when the last part is written."""
        from curate.dedup.buckets import write_sorted  # buckets imports core, which imports this module

        bands_dest, sigs_dest = (self.path / kind / f"{_safe(tag)}.parquet" for kind in ("bands", "sigs"))
        for d in (bands_dest, sigs_dest):
            d.parent.mkdir(parents=True, exist_ok=True)
            sweep_tmp_beside(d)  # what a killed recording of this version left (its run files included)
        runs_dir = bands_dest.with_name(f".{bands_dest.name}.{os.getpid()}.tmp")
        n = 0
        with atomic_path(bands_dest) as bands_tmp, atomic_path(sigs_dest) as sigs_tmp, _scratch(runs_dir):
            runs: list[Path] = []
            writer: pq.ParquetWriter | None = None
            try:
                for ids, sig, exact in parts:
                    bands, sigs = self._tables(tag, ids, sig, exact)
                    runs.append(runs_dir / f"{len(runs):06d}.parquet")
                    write_sorted(bands, runs[-1], "band_hash")
                    t = sigs.to_arrow()
                    writer = writer or pq.ParquetWriter(sigs_tmp, t.schema)
                    writer.write_table(t.cast(writer.schema))
                    n += len(ids)
            finally:
                if writer is not None:
                    writer.close()
            empty_bands, empty_sigs = self._tables(tag, [], _no_sigs(self.params), _NO_KEYS)
            if writer is None:  # no rows: the version is still recorded, with empty tables
                empty_sigs.write_parquet(sigs_tmp)
            _merge_sorted(runs, bands_tmp, empty_bands.to_arrow().schema)
        meta = {"params": asdict(self.params), "versions": sorted({*self.versions(), tag})}
        write_bytes_atomic(json.dumps(meta, indent=1).encode(), self.path / "index.json")
        self._bands = self._sigs = None
        return n

    def _tables(
        self, tag: str, sample_ids: list[str] | pl.Series, sig: np.ndarray, exact: np.ndarray
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        p = self.params
        ids = pl.Series("sample_id", sample_ids, dtype=pl.String)
        bands = doc_bands(sig, exact, p.bands, p.rows)
        bands = bands.with_columns(
            pl.Series("sample_id", ids.to_numpy()[bands["doc"].to_numpy()], pl.String),
            pl.lit(tag, pl.String).alias("dataset"),
        ).drop("doc")
        sigs = pl.DataFrame(
            {
                "sample_id": ids,
                "dataset": pl.Series([tag] * len(ids), dtype=pl.String),
                "sig": pl.Series([r.tobytes() for r in sig], dtype=pl.Binary),
            }
        )
        return bands, sigs

    def files(self) -> tuple[list[Path], list[Path]]:
        """The version files: (band tables, signature tables), each sorted by name."""
        if not self.path.exists():
            return [], []
        return sorted((self.path / "bands").glob("*.parquet")), sorted((self.path / "sigs").glob("*.parquet"))

    def versions(self) -> list[str]:
        return sorted(f.stem for f in (self.path / "bands").glob("*.parquet")) if self.path.exists() else []

    # ---- querying ------------------------------------------------------------------------------------
    def load(self) -> DedupIndex:
        """Read the band tables into memory (done once; queries are then pure)."""
        if self._bands is None:
            files = sorted((self.path / "bands").glob("*.parquet")) if self.path.exists() else []
            self._bands = (
                pl.concat([pl.read_parquet(f) for f in files])
                if files
                else pl.DataFrame(
                    schema={
                        "band_id": pl.Int16,
                        "band_hash": pl.Int64,
                        "sample_id": pl.String,
                        "dataset": pl.String,
                    }
                )
            )
            sfiles = sorted((self.path / "sigs").glob("*.parquet")) if self.path.exists() else []
            self._sigs = (
                pl.concat([pl.read_parquet(f) for f in sfiles])
                if sfiles
                else pl.DataFrame(schema={"sample_id": pl.String, "dataset": pl.String, "sig": pl.Binary})
            )
        return self

    def _tables_for_query(self) -> tuple[pl.LazyFrame, pl.LazyFrame]:
        if self._bands is not None and self._sigs is not None:
            return self._bands.lazy(), self._sigs.lazy()
        files = sorted((self.path / "bands").glob("*.parquet")) if self.path.exists() else []
        if not files:
            self.load()  # empty tables of the right schema
            assert self._bands is not None and self._sigs is not None
            return self._bands.lazy(), self._sigs.lazy()
        return pl.scan_parquet(files), pl.scan_parquet(sorted((self.path / "sigs").glob("*.parquet")))

    def __len__(self) -> int:
        self.load()
        assert self._sigs is not None
        return self._sigs.height

    def query(self, sig: np.ndarray, exact: np.ndarray, threshold: float) -> IndexHits:
        """Best index match per row: exact key equality, or band collision verified >= threshold.

        On a loaded index the tables in memory are joined; otherwise the version files are scanned and
        joined in a stream, keeping only the rows that collide with this query and their signatures, so
        a shard's query holds the shard, not the index (tens of millions of published rows)."""
        p, n = self.params, sig.shape[0]
        q = doc_bands(sig, exact, p.bands, p.rows)
        bands, sigs = self._tables_for_query()
        hits = (
            bands.join(q.lazy(), on=["band_id", "band_hash"])
            .group_by(["doc", "sample_id", "dataset"])
            .agg((pl.col("band_id") == EXACT_BAND).any().alias("exact"))
            .collect(engine="streaming")
        )
        wanted = hits.select("sample_id", "dataset").unique()
        hit_sigs = sigs.join(wanted.lazy(), on=["sample_id", "dataset"], how="semi").collect(engine="streaming")
        # a fixed order: equal Jaccard estimates pick the same match whatever order the join produced
        hits = hits.join(hit_sigs, on=["sample_id", "dataset"], how="left").sort("doc", "dataset", "sample_id")
        best_j = np.zeros(n)
        best_ds: list[str | None] = [None] * n
        best_id: list[str | None] = [None] * n
        if hits.height:
            docs = hits["doc"].to_numpy()
            stored = np.frombuffer(b"".join(hits["sig"].to_list()), dtype=np.uint32).reshape(-1, p.num_perm)
            j = (stored == sig[docs]).mean(axis=1)
            j = np.where(hits["exact"].to_numpy(), 1.0, j)
            order = np.lexsort((-j, docs))
            ds, sid = hits["dataset"].to_list(), hits["sample_id"].to_list()
            for k in order[np.r_[True, docs[order][1:] != docs[order][:-1]]]:
                d = int(docs[k])
                best_j[d] = j[k]
                if j[k] >= threshold:
                    best_ds[d], best_id[d] = ds[k], sid[k]
        return IndexHits(best_ds, best_id, best_j)


_NO_KEYS = np.zeros(0, np.uint64)


@contextmanager
def _scratch(path: Path) -> Iterator[Path]:
    """A fresh folder, removed on the way out (a killed process's is swept by the next recording)."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _merge_sorted(runs: list[Path], out: Path, schema: pa.Schema) -> None:
    """Merge run files (each sorted by band_hash) into ``out`` sorted by band_hash, one band-hash range in
    memory at a time (each run's slice of it read through its row-group statistics)."""
    from curate.dedup.buckets import _ROW_GROUP, _read_range, hash_range, part_count

    rows = sum(pq.ParquetFile(r).metadata.num_rows for r in runs)
    parts = part_count(rows)
    with pq.ParquetWriter(out, schema, compression="lz4") as w:
        for part in range(parts if runs else 0):
            t = _read_range(runs, [0] * len(runs), *hash_range(part, parts))
            if t.height:
                t = t.drop("_off").sort("band_hash", "band_id")
                w.write_table(t.to_arrow().cast(schema), row_group_size=_ROW_GROUP)


def _no_sigs(p: IndexParams) -> np.ndarray:
    return np.zeros((0, p.num_perm), np.uint32)
