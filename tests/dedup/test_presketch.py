"""Signatures computed while ``curate check`` stages its rows: the same as sketching them all at once,
and nothing (the corpus pass then sketches as before) past the limits or after an error."""

from __future__ import annotations

import numpy as np
import polars as pl

from curate.dedup.core import DedupConfig, sketch_frame
from curate.dedup.presketch import Presketch

TEXTS = [
    "the cat sat on the mat " * 20,
    "",
    "Ünïcödé wörds ＡＢＣ and 数学 mixed in " * 5,
    "the cat sat on the mat " * 20,  # an exact copy
    "short",
] * 40


def _frames(texts: list[str | None], sizes: list[int]) -> list[pl.DataFrame]:
    df = pl.DataFrame({"response": pl.Series(texts, dtype=pl.String), "n": range(len(texts))})
    out, lo = [], 0
    for k in sizes:
        out.append(df.slice(lo, k))
        lo += k
    return out


def test_frame_by_frame_equals_all_at_once() -> None:
    texts: list[str | None] = [*TEXTS, None]
    for cfg in (DedupConfig(), DedupConfig(num_perm=64, ngram=3, seed=9)):
        p = Presketch(cfg, max_rows=10_000, max_bytes=1 << 30)
        for f in _frames(texts, [1, 0, 37, 100, len(texts) - 138]):
            p.feed(f)
        got = p.result(len(texts))
        assert got is not None
        want = sketch_frame(pl.DataFrame({"response": pl.Series(texts, dtype=pl.String)}), cfg)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


def test_gives_up_past_the_limits_or_on_a_row_count_it_did_not_see() -> None:
    frames = _frames(list(TEXTS), [100, 100])
    for limits in ({"max_rows": 150, "max_bytes": 1 << 30}, {"max_rows": 10_000, "max_bytes": 1000}):
        p = Presketch(DedupConfig(), **limits)
        for f in frames:
            p.feed(f)
        assert p.result(200) is None
    p = Presketch(DedupConfig(), max_rows=10_000, max_bytes=1 << 30)
    p.feed(frames[0])
    assert p.result(200) is None  # 100 rows sketched, 200 asked for
    empty = Presketch(DedupConfig(), max_rows=10, max_bytes=10)
    got = empty.result(0)
    assert got is not None and got[0].shape == (0, 128) and got[1].shape == (0,)


def test_a_missing_text_column_or_a_closed_presketch_gives_nothing() -> None:
    p = Presketch(DedupConfig(text_column="completion"), max_rows=10_000, max_bytes=1 << 30)
    p.feed(_frames(list(TEXTS), [10])[0])
    assert p.result(10) is None
    q = Presketch(DedupConfig(), max_rows=10_000, max_bytes=1 << 30)
    q.feed(_frames(list(TEXTS), [10])[0])
    q.close()
    q.close()  # twice: a no-op
    assert q.result(10) is None
