"""The streaming engine's background Parquet writer: order kept, errors surfaced, nothing half-written."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.checks.runner import BackgroundWriter

SCHEMA = pa.schema([("i", pa.int64())])


def test_frames_are_written_in_order(tmp_path: Path) -> None:
    w = BackgroundWriter(tmp_path / "x.parquet", lambda df: df.to_arrow(), SCHEMA, depth=1)
    for k in range(20):
        w.write(pl.DataFrame({"i": list(range(k * 10, k * 10 + 10))}))
    w.close()
    assert pq.read_table(tmp_path / "x.parquet")["i"].to_pylist() == list(range(200))


def test_a_conversion_error_reaches_the_caller(tmp_path: Path) -> None:
    def convert(df: pl.DataFrame) -> pa.Table:
        if df["i"][0] == 30:
            raise ValueError("bad frame")
        return df.to_arrow()

    w = BackgroundWriter(tmp_path / "x.parquet", convert, SCHEMA, depth=1)
    with pytest.raises(ValueError, match="bad frame"):
        try:
            for k in range(10):
                w.write(pl.DataFrame({"i": [k * 10]}))
        finally:
            w.close()  # as check_files does: the thread is joined whatever happened
