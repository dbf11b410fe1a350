"""Pass 1's rows on their way to pass 2 (the corpus checks): held in memory while they are small, in an
Arrow IPC staging file (:mod:`curate.io.staging`) once they pass a budget.

A run of a few hundred MB kept its rows in the staging file only to read them back twice (the columns
dedup needs, then every row to the output): on 20k traces of 8 KB, 0.25-0.32 CPU-seconds to convert
and write them and 0.15-0.3 to read them back, all of it in the run's serial tail or beside its checks.
Up to ``budget`` bytes the frames stay as they are (conformed to the table, as a read-back gives them);
past it, everything held so far goes to the staging file and the rest follows it there, so memory stays
bounded by the budget whatever the input. An input larger than the budget goes to the file from the
start (holding 256 MB before spilling raised 1 GB of traces' peak from 734 to 873 MB). Either way the
readers below see the same rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import polars as pl
import pyarrow as pa

from curate.checks.streams import BackgroundWriter
from curate.io import staging
from curate.io.parquet import BATCH_BYTES
from curate.schema import Table

# What pass 1 may hold in memory (Polars' estimate of the conformed frames). 20k traces of 8 KB with
# every check's columns are ~170 MB.
STAGE_MEMORY_BYTES = 256 << 20


class Stage:
    """Rows written in order, then read back (each reader any number of times, ``frames`` once)."""

    def __init__(self, path: Path, table: Table, budget: int | None = None, expected_bytes: int = 0) -> None:
        """``expected_bytes``: about how much the rows will be (the input's size); past the budget, they
        go to the file from the first frame, so a big run never holds a budget's worth first."""
        self.path, self._table = path, table
        self._budget = STAGE_MEMORY_BYTES if budget is None else budget
        self._held: list[pl.DataFrame] | None = []
        self._size = 0
        self._writer: BackgroundWriter | None = None
        if expected_bytes > self._budget:
            self._spill()

    @classmethod
    def of_file(cls, path: Path, table: Table) -> Stage:
        """The rows of a checked Parquet (or staging) file."""
        stage = cls(path, table, 0)
        stage._held = None
        return stage

    @property
    def in_memory(self) -> bool:
        return self._held is not None

    def write(self, df: pl.DataFrame) -> None:
        if self._held is None:
            assert self._writer is not None
            self._writer.write(df)
            return
        df = self._table.conform(df)
        self._held.append(df)
        self._size += int(df.estimated_size())
        if self._size > self._budget:
            self._spill()

    def _spill(self) -> None:
        """What is held, then every later frame, to the staging file."""
        assert self._held is not None
        self._writer = BackgroundWriter(self.path, self._table.to_arrow, self._table.arrow_schema(), compression="ipc")
        held, self._held = self._held, None
        for frame in held:
            self._writer.write(frame)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()

    def names(self) -> list[str]:
        if self._held is None:
            return staging.names(self.path)
        return list(self._table.polars_schema())

    def num_rows(self) -> int:
        return staging.num_rows(self.path) if self._held is None else sum(f.height for f in self._held)

    def nbytes(self) -> int:
        return self.path.stat().st_size if self._held is None else self._size

    def column_bytes(self, column: str, stop_above: int | None = None) -> int:
        if self._held is None:
            return staging.column_bytes(self.path, column, stop_above)
        if column not in self.names():
            return 0
        return sum(int(f[column].estimated_size()) for f in self._held)

    def read(self, columns: Sequence[str]) -> pl.DataFrame:
        if self._held is None:
            return staging.read(self.path, columns)
        if not self._held:
            return self._table.empty().select(columns)
        return pl.concat([f.select(columns) for f in self._held], rechunk=False)

    def batches(self, columns: Sequence[str] | None = None) -> Iterator[pa.RecordBatch]:
        if self._held is None:
            yield from staging.batches(self.path, columns)
            return
        names = list(columns or self.names())
        schema = self._table.arrow_schema()
        types = pa.schema([schema.field(n) for n in names])
        for f in self._held:  # only the columns asked for are converted, with the staging file's types
            yield from f.select(names).to_arrow().cast(types).to_batches()

    def frames(self, batch_bytes: int = BATCH_BYTES) -> Iterator[pl.DataFrame]:
        """Every row in order, once: held frames are let go as they are handed out."""
        if self._held is None:
            yield from staging.frames(self.path, batch_bytes=batch_bytes)
            return
        held, self._held = self._held, []
        held.reverse()
        while held:
            df = held.pop()
            step = max(64, int(batch_bytes * df.height / max(df.estimated_size(), 1)))
            for lo in range(0, df.height, step):
                yield df.slice(lo, step)
