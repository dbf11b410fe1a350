"""The staging file between the two passes of a check: Arrow IPC, uncompressed, read back batch by batch.

Pass 1 writes every checked row there; pass 2 reads it back (the columns the corpus checks need, then
every row to the output). Parquet, even uncompressed, is encoded on the way in and decoded on the way
out; an IPC file is the Arrow buffers as they are. On 20k traces of 8 KB the stream's read of it took
0.08 s where the Parquet staging file took 0.36, and the check 5.21-5.24 s against 5.35-5.39 (run
interleaved). The file is private to one run and removed after it. Pass 2 also runs over a checked
Parquet file (``run_corpus_checks``), so every reader here takes either, told apart by the magic bytes.

``frames`` and ``batches`` read through ``OSFile``, one record batch at a time, never a memory map: the
mapped pages of a 2 GB file would count in the run's resident memory. ``read`` (the in-memory corpus
pass: at most a shard of rows) uses Polars' reader, whose buffers come from memory the run already
touched: pyarrow's ``read_all`` of the same 160 MB took 0.39 s there, all of it the kernel faulting in
fresh pages.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from curate.io.parquet import BATCH_BYTES, open_parquet, parquet_frames

_ARROW_MAGIC = b"ARROW1"


def is_ipc(path: str | Path) -> bool:
    with open(path, "rb") as f:
        return f.read(len(_ARROW_MAGIC)) == _ARROW_MAGIC


def _open(path: str | Path, columns: Sequence[str] | None = None) -> ipc.RecordBatchFileReader:
    reader = ipc.open_file(pa.OSFile(str(path)))
    if columns is None:
        return reader
    fields = [reader.schema.names.index(c) for c in columns]
    return ipc.open_file(pa.OSFile(str(path)), options=ipc.IpcReadOptions(included_fields=fields))


def names(path: str | Path) -> list[str]:
    return list(_open(path).schema.names) if is_ipc(path) else list(pq.read_schema(path).names)


def num_rows(path: str | Path) -> int:
    return int(_open(path).count_rows()) if is_ipc(path) else int(pq.read_metadata(path).num_rows)


def column_bytes(path: str | Path, column: str, stop_above: int | None = None) -> int:
    """Bytes of one column (for an IPC file its buffers, read one batch at a time; with ``stop_above``
    the count stops once past it, so a big file is not read through to learn that it is big)."""
    if column not in names(path):
        return 0
    if not is_ipc(path):
        meta = pq.read_metadata(path)
        i = meta.schema.names.index(column)
        return sum(meta.row_group(g).column(i).total_uncompressed_size for g in range(meta.num_row_groups))
    reader, total = _open(path, [column]), 0
    for i in range(reader.num_record_batches):
        total += reader.get_batch(i).nbytes
        if stop_above is not None and total > stop_above:
            break
    return total


def read(path: str | Path, columns: Sequence[str]) -> pl.DataFrame:
    if not is_ipc(path):
        return pl.read_parquet(path, columns=list(columns))
    return pl.read_ipc(path, columns=list(columns))


def batches(path: str | Path, columns: Sequence[str] | None = None, batch_rows: int = 8192) -> Iterator[pa.RecordBatch]:
    """The rows in order as Arrow record batches of at most ``batch_rows`` rows."""
    if not is_ipc(path):
        pf = open_parquet(path)
        try:
            yield from pf.iter_batches(batch_size=batch_rows, columns=None if columns is None else list(columns))
        finally:
            pf.close()
        return
    reader = _open(path, columns)
    for i in range(reader.num_record_batches):
        rb = reader.get_batch(i)
        for lo in range(0, rb.num_rows, batch_rows):
            yield rb.slice(lo, batch_rows)


def frames(
    path: str | Path, columns: Sequence[str] | None = None, batch_bytes: int = BATCH_BYTES
) -> Iterator[pl.DataFrame]:
    """The rows in order, as frames of about ``batch_bytes`` at most (a written batch is sliced)."""
    if not is_ipc(path):
        yield from parquet_frames(path, columns=columns, batch_bytes=batch_bytes)
        return
    reader = _open(path, columns)
    for i in range(reader.num_record_batches):
        rb = reader.get_batch(i)
        if not rb.num_rows:
            continue
        step = max(64, int(batch_bytes * rb.num_rows / max(rb.nbytes, 1)))
        for lo in range(0, rb.num_rows, step):
            df = pl.from_arrow(rb.slice(lo, step))
            assert isinstance(df, pl.DataFrame)
            yield df
