"""``curate.open("rs_sft@3")``: one dataset version in a notebook, without paths.

>>> ds = curate.open("rs_sft@prod")          # NAME, NAME@VERSION, NAME@TAG; home: $CURATE_HOME or ./curate-data
>>> ds.manifest.rows, ds.funnel.total
>>> ds.to_polars(); ds.to_arrow(); ds.to_hf()
>>> ds.sample(5, reason="math.wrong_answer")  # rows carrying that reason (reject_reasons or select_reason)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from curate.store.versions import DatasetVersion, Store, StoreError

if TYPE_CHECKING:
    import pyarrow as pa

    from curate.checks.funnel import Funnel
    from curate.store.manifest import Manifest


@dataclass(frozen=True)
class Dataset:
    """A published version, checked against its manifest (sizes, footers) when opened."""

    store: Store
    version: DatasetVersion

    @property
    def ref(self) -> str:
        return self.version.manifest.ref

    @property
    def manifest(self) -> Manifest:
        return self.version.manifest

    @property
    def path(self) -> Path:
        return self.version.path

    @property
    def funnel(self) -> Funnel:
        """Counts per reason; shares (``.rows()``, ``.frame()``) are of the input, not of the output."""
        from curate.checks.funnel import Funnel

        return Funnel.from_dict(self.manifest.funnel)

    def lazy(self) -> pl.LazyFrame:
        return self.version.scan()

    def to_polars(self) -> pl.DataFrame:
        return self.lazy().collect()

    def to_arrow(self) -> pa.Table:
        import pyarrow.parquet as pq

        self.version.check()
        fs = getattr(self.version, "fs", None)  # object storage: read through the store's filesystem
        return pq.ParquetDataset([str(p) for p in self.version.parts], filesystem=fs).read()

    def to_hf(self) -> Any:
        """A ``datasets.Dataset`` of exactly this version (not every version in the folder)."""
        from datasets import Dataset as HFDataset
        from datasets import load_dataset

        self.version.check()
        if not isinstance(self.version, DatasetVersion):  # object storage: from the Arrow table
            return HFDataset(self.to_arrow())
        return load_dataset("parquet", data_files=[str(p) for p in self.version.parts], split="train")

    def sample(self, n: int = 5, reason: str | None = None, seed: int = 0) -> pl.DataFrame:
        """``n`` random rows (fewer if there are fewer), optionally only those carrying ``reason``."""
        lf = self.lazy()
        cols = lf.collect_schema().names()
        if reason is not None:
            if "reject_reasons" in cols:
                lf = lf.filter(pl.col("reject_reasons").list.contains(reason))
            elif "select_reason" in cols:
                lf = lf.filter(pl.col("select_reason") == reason)
            else:
                raise StoreError(
                    f"{self.ref} ({self.manifest.kind}) has no reason column "
                    f"(reject_reasons or select_reason); sample without reason="
                )
        df = lf.collect()
        return df.sample(min(n, df.height), seed=seed) if df.height else df

    def __repr__(self) -> str:
        m = self.manifest
        return f"<curate dataset {m.ref}: {m.kind}, {m.rows:,} rows, {m.created_at}>"


def open_dataset(ref: str, home: str | Path | None = None) -> Dataset:
    """Open ``NAME``, ``NAME@VERSION`` or ``NAME@TAG`` in the store at ``home`` (default ``$CURATE_HOME``)."""
    store = Store(home)
    dv = store.get(ref)
    dv.check()
    return Dataset(store, dv)
