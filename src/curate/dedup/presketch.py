"""Signatures of the rows a check writes, computed while it writes them.

``curate check`` runs the dedup check after every row check, over the whole run: on 20k traces of 8 KB
its sketch was 0.47 s in which nothing else ran. The texts are final once a row leaves the row checks,
so a background thread sketches each frame as it is staged (the sketch is per row: batches change
nothing) and the corpus pass starts from the signatures. Only for runs the in-memory dedup takes (up to
``max_rows`` rows and ``max_bytes`` of text); past either, the thread stops and frees what it holds and
the staged dedup sketches its parts itself.
"""

from __future__ import annotations

import queue
import threading

import numpy as np
import polars as pl

from curate.dedup.core import DedupConfig
from curate.dedup.minhash import sketch


class Presketch:
    """``feed`` frames in order; ``result(n)``: (signatures, exact keys) of the ``n`` rows fed, or None
    when it gave up (too many rows or bytes, or an error: the caller then sketches as before)."""

    def __init__(self, cfg: DedupConfig, max_rows: int, max_bytes: int) -> None:
        self._cfg, self._max_rows, self._max_bytes = cfg, max_rows, max_bytes
        self._rows = self._bytes = 0
        self._parts: list[tuple[np.ndarray, np.ndarray]] | None = []
        self._stopped = False
        self._q: queue.Queue[pl.Series | None] = queue.Queue(maxsize=2)
        self._thread = threading.Thread(target=self._work, name="curate-presketch", daemon=True)
        self._thread.start()

    def feed(self, df: pl.DataFrame) -> None:
        if self._parts is None or self._stopped:
            return
        col = self._cfg.text_column
        if col not in df.columns:
            self._parts = None
            return
        text = df[col].cast(pl.String)
        self._rows += len(text)
        self._bytes += int(text.str.len_bytes().sum() or 0)
        if self._rows > self._max_rows or self._bytes > self._max_bytes:
            self._parts = None  # the thread drops what it has as soon as it sees this
            return
        self._q.put(text)

    def _work(self) -> None:
        c = self._cfg
        while (text := self._q.get()) is not None:
            parts = self._parts
            if parts is None:
                continue
            try:  # one thread: the row checks run beside it
                parts.append(sketch(text, num_perm=c.num_perm, ngram=c.ngram, scheme=c.scheme, seed=c.seed, threads=1))
            except Exception:  # noqa: BLE001 - the corpus pass sketches again and reports the error there
                self._parts = None

    def _stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            self._q.put(None)
            self._thread.join()

    def result(self, rows: int) -> tuple[np.ndarray, np.ndarray] | None:
        self._stop()
        parts, self._parts = self._parts, None
        if parts is None or sum(len(e) for _, e in parts) != rows:
            return None
        if not parts:
            return np.zeros((0, self._cfg.num_perm), np.uint32), np.zeros(0, np.uint64)
        return np.concatenate([s for s, _ in parts]), np.concatenate([e for _, e in parts])

    def close(self) -> None:
        """Stop the thread without a result (a run that failed)."""
        self._parts = None
        self._stop()
