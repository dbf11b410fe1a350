"""The staging file between a check's passes: Arrow IPC written by the check's own writer, read back the
same as a Parquet file of the same rows (``run_corpus_checks`` is given Parquet), in bounded batches."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

from curate.checks.base import finalize
from curate.checks.streams import BackgroundWriter
from curate.io import staging
from curate.schema import table
from curate.testing.traces import make_traces

BATCHES = 12


@pytest.fixture(scope="module")
def rows() -> pl.DataFrame:
    df = make_traces(600, target_bytes=4096, seed=1).drop("defect")
    ids = pl.Series("sample_id", [f"s{i}" for i in range(df.height)])
    return finalize(df.with_columns(ids, prompt_id=pl.lit("p"), prompt=pl.lit("What is 6 x 7?")))


def _both(tmp: Path, df: pl.DataFrame, parts: int = BATCHES) -> tuple[Path, Path]:
    schema = table("checked_sample")
    ipc_path, pq_path = tmp / ".out.parquet.1.pass1", tmp / "stage.parquet"
    for path, compression in ((ipc_path, "ipc"), (pq_path, "none")):
        writer = BackgroundWriter(path, schema.to_arrow, schema.arrow_schema(), compression=compression)
        for part in df.iter_slices(df.height // parts):
            writer.write(part)
        writer.close()
    return ipc_path, pq_path


def test_ipc_and_parquet_staging_read_back_the_same(tmp_path: Path, rows: pl.DataFrame) -> None:
    ipc_path, pq_path = _both(tmp_path, rows)
    assert staging.is_ipc(ipc_path) and not staging.is_ipc(pq_path)
    assert staging.names(ipc_path) == staging.names(pq_path) == list(table("checked_sample").names)
    assert staging.num_rows(ipc_path) == staging.num_rows(pq_path) == rows.height
    cols = ["sample_id", "response", "reject_reasons"]
    assert_frame_equal(staging.read(ipc_path, cols), staging.read(pq_path, cols))
    assert_frame_equal(pl.concat(staging.frames(ipc_path)), pl.concat(staging.frames(pq_path)))
    assert_frame_equal(staging.read(ipc_path, ["sample_id"]), rows.select("sample_id"))
    a = pa.Table.from_batches(list(staging.batches(ipc_path, cols, batch_rows=70)))
    b = pa.Table.from_batches(list(staging.batches(pq_path, cols, batch_rows=70)))
    assert a.equals(b) and a.num_rows == rows.height
    assert staging.column_bytes(ipc_path, "missing") == staging.column_bytes(pq_path, "missing") == 0


def test_frames_are_bounded_in_bytes_and_keep_the_order(tmp_path: Path, rows: pl.DataFrame) -> None:
    ipc_path, _ = _both(tmp_path, rows, parts=3)  # written batches of 200 rows of 4 KB
    frames = list(staging.frames(ipc_path, batch_bytes=64 << 10))  # 16 rows' worth; 64 rows at least
    assert [f.height for f in frames] == [64, 64, 64, 8] * 3
    assert pl.concat(frames)["sample_id"].to_list() == rows["sample_id"].to_list()
    assert max(len(b) for b in staging.batches(ipc_path, ["sample_id"], batch_rows=7)) == 7


def test_column_bytes_stops_once_past_the_limit(tmp_path: Path, rows: pl.DataFrame) -> None:
    ipc_path, pq_path = _both(tmp_path, rows)
    whole = staging.column_bytes(ipc_path, "response")
    assert whole >= rows["response"].str.len_bytes().sum()
    # the Parquet footer's count (page headers and length prefixes included) is within a few percent
    assert abs(staging.column_bytes(pq_path, "response") - whole) < whole * 0.05
    part = staging.column_bytes(ipc_path, "response", stop_above=whole // 4)
    assert whole // 4 < part < whole  # read a few batches, not all


def test_a_truncated_staging_file_is_an_error_not_missing_rows(tmp_path: Path, rows: pl.DataFrame) -> None:
    ipc_path, _ = _both(tmp_path, rows)
    data = ipc_path.read_bytes()
    ipc_path.write_bytes(data[: len(data) // 2])
    with pytest.raises(pa.ArrowInvalid):
        list(staging.frames(ipc_path))
    assert pq.read_metadata(_both(tmp_path, rows)[1]).num_rows == rows.height


def test_the_writer_cuts_ipc_batches_by_bytes(tmp_path: Path, rows: pl.DataFrame) -> None:
    """One frame of a shard of tiny rows is hundreds of thousands of rows: staged as one record batch, a
    reader would hold all of it at once. The writer cuts batches of about ``batch_bytes``."""
    import pyarrow.ipc as ipc

    schema = table("checked_sample")
    path = tmp_path / ".o.parquet.1.pass1"
    writer = BackgroundWriter(path, schema.to_arrow, schema.arrow_schema(), compression="ipc", batch_bytes=256 << 10)
    writer.write(rows)  # 600 rows of ~4 KB: one frame
    writer.close()
    reader = ipc.open_file(str(path))
    sizes = [reader.get_batch(i).nbytes for i in range(reader.num_record_batches)]
    assert len(sizes) > 5 and max(sizes) < 2 * (256 << 10)
    cols = list(rows.columns)
    assert_frame_equal(pl.concat(staging.frames(path)).select(cols), staging.read(path, cols).select(cols))
    assert staging.read(path, ["sample_id"])["sample_id"].to_list() == rows["sample_id"].to_list()
