"""The ``dedup`` check (corpus scope): exact and near duplicates within the run, and rows already
published (persistent index). The index's settings are checked in the constructor (a mismatch is an
error before any work); its tables are never loaded: the query streams over them (memory bounded by the
rows that collide, not by the published versions)."""

from __future__ import annotations

import numpy as np
import polars as pl

from curate.checks.base import Check
from curate.dedup.core import DedupConfig, dedup_frame
from curate.dedup.index import DedupIndex


class DedupCheck(Check[DedupConfig]):
    name = "dedup"
    scope = "corpus"
    cost = 50
    Config = DedupConfig
    reads = ("response", "accepted")

    def __init__(self, config: DedupConfig | None = None) -> None:
        super().__init__(config)
        self.index = None
        if self.config.index_dir:
            self.index = DedupIndex(self.config.index_dir, self.config.index_params())

    def needs(self) -> tuple[str, ...]:
        """Columns the corpus runner must load for this check (the rest stays on disk)."""
        cols = [self.config.text_column, "accepted"]
        if self.config.score_column:
            cols.append(self.config.score_column)
        return tuple(cols)

    def run(self, df: pl.DataFrame, sketched: tuple[np.ndarray, np.ndarray] | None = None) -> pl.DataFrame:
        """``sketched``: the signatures and exact keys of ``df``'s texts, when the caller has them
        (``curate check`` computes them while it stages the rows: :mod:`curate.dedup.presketch`)."""
        return dedup_frame(df, self.config, self.index, sketched)
