"""Overlapping the GIL-bound and the GIL-free parts of a run: a prefetching iterator and a Parquet (or
Arrow IPC) writer that converts and compresses in a thread (both used by :mod:`curate.checks.runner`)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import polars as pl
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

T = TypeVar("T")


def prefetch(it: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Run ``it`` in a background thread, ``depth`` items ahead.

    Parsing JSONL holds the GIL while checks and Parquet writing (Rust/C++) release it, so overlapping
    them uses the second core. Exceptions are re-raised in the consumer.
    """
    q: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        try:
            for item in it:
                while not stop.is_set():
                    try:
                        q.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(("done", None))
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            q.put(("error", e))

    t = threading.Thread(target=work, name="curate-prefetch", daemon=True)
    t.start()
    try:
        while True:
            kind, value = q.get()
            if kind == "done":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()


class BackgroundWriter:
    """A Parquet writer that converts and compresses in a background thread, ``depth`` frames behind.

    Arrow conversion and zstd compression release the GIL, so they overlap the next batch's checks;
    ``close`` waits for the queue to drain and re-raises the writer thread's error, if any.
    ``compression="ipc"`` writes an uncompressed Arrow IPC file instead (a run's staging file:
    :mod:`curate.io.staging`), in record batches of about ``batch_bytes``: a reader gets one whole
    batch at a time, and a 16 MB shard of tiny rows is 190k rows of every check's columns (1M tiny
    rows, every default check, peak RSS: 16 MB batches 716-725 MB, 8 MB 630; at 250k, one batch a
    shard 759 MB, 8 MB batches 613).
    """

    def __init__(
        self,
        path: Path,
        convert: Callable[[pl.DataFrame], Any],
        schema: Any,
        depth: int = 2,
        compression: str = "zstd",
        batch_bytes: int = 8 << 20,
    ) -> None:
        self._batch_bytes = batch_bytes if compression == "ipc" else 0
        self._writer: pq.ParquetWriter | ipc.RecordBatchFileWriter = (
            ipc.new_file(str(path), schema)
            if compression == "ipc"
            else pq.ParquetWriter(path, schema, compression=compression)
        )
        self._convert = convert
        self._q: queue.Queue[pl.DataFrame | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="curate-writer", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while (df := self._q.get()) is not None:
            if self._error is None:
                try:
                    table = self._convert(df)
                    if self._batch_bytes and table.num_rows:
                        rows = max(64, int(self._batch_bytes * table.num_rows / max(table.nbytes, 1)))
                        self._writer.write_table(table, max_chunksize=rows)
                    else:
                        self._writer.write_table(table)
                except BaseException as e:  # noqa: BLE001 - re-raised by write/close in the caller
                    self._error = e

    def write(self, df: pl.DataFrame) -> None:
        if self._error is not None:
            raise self._error
        self._q.put(df)

    def close(self) -> None:
        self._q.put(None)
        self._thread.join()
        self._writer.close()
        if self._error is not None:
            raise self._error
