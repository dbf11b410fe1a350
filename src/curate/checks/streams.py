"""Overlapping the GIL-bound and the GIL-free parts of a run: a prefetching iterator and a Parquet
writer that converts and compresses in a thread (both used by :mod:`curate.checks.runner`)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import polars as pl
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
    """

    def __init__(
        self,
        path: Path,
        convert: Callable[[pl.DataFrame], Any],
        schema: Any,
        depth: int = 2,
        compression: str = "zstd",
    ) -> None:
        self._writer = pq.ParquetWriter(path, schema, compression=compression)
        self._convert = convert
        self._q: queue.Queue[pl.DataFrame | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="curate-writer", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while (df := self._q.get()) is not None:
            if self._error is None:
                try:
                    self._writer.write_table(self._convert(df))
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
