"""The byte-level word hashing and the sparse densification against the previous implementations."""

from __future__ import annotations

import random

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from curate.dedup import DedupCheck, DedupConfig, dedup_frame
from curate.dedup import minhash as mh
from curate.dedup.normalize import token_hashes
from curate.dedup.words import word_hashes

PIECES = [
    *"abcXYZ019_ -.,!?'\n\t\r",
    "é",
    "Ä",
    "中文",
    "。",
    "—",
    "İ",
    "K",
    "ß",
    "\u3000",
    "😀",
    "ǅ",
    "Ω",
    "x" * 70,
    "Y" * 9,
]


def messy_texts(n: int, seed: int = 0) -> list[str | None]:
    rng = random.Random(seed)
    out: list[str | None] = ["".join(rng.choice(PIECES) for _ in range(rng.randint(0, 60))) for _ in range(n)]
    return [*out, None, "", "   ", "a", "ÉCOLE école", "x" * 300, "中文中文 中文"]


@pytest.mark.parametrize("lo", [0, 7])
def test_word_hashes_split_words_like_token_hashes(lo: int) -> None:
    """Same words per text (ASCII by byte tables, the rest through Polars' normalization): equal word
    counts, and the two hashes are the same partition of the words (a bijection between them)."""
    texts = pl.Series(messy_texts(5000), dtype=pl.String).slice(lo)  # a slice: the buffer has an offset
    old, old_counts = token_hashes(texts)
    new, new_counts = word_hashes(texts)
    assert (old_counts == new_counts).all()
    pairs = pl.DataFrame({"old": old, "new": new}).unique()
    assert pairs["old"].n_unique() == pairs["new"].n_unique() == pairs.height


def _old_densify(sig: np.ndarray, nonempty_doc: np.ndarray, seed: int) -> np.ndarray:
    """The previous whole-row implementation (the oracle)."""
    empty = (sig == mh.EMPTY) & nonempty_doc[:, None]
    rows = np.flatnonzero(empty.any(axis=1))
    if not len(rows):
        return sig
    k = sig.shape[1]
    probes = np.random.default_rng(seed + 7919).integers(0, k, size=(mh._PROBES, k))
    sub, sub_empty = sig[rows], empty[rows]
    filled, todo = sub.copy(), sub_empty.copy()
    for t in range(mh._PROBES):
        ok = ~sub_empty[:, probes[t]] & todo
        np.copyto(filled, sub[:, probes[t]], where=ok)
        todo &= ~ok
    if todo.any():
        idx = np.where(sub_empty, 2 * k, np.arange(k))
        doubled = np.concatenate([idx, idx + k * (idx < 2 * k)], axis=1)
        nxt = np.minimum.accumulate(doubled[:, ::-1], axis=1)[:, ::-1][:, :k] % k
        np.copyto(filled, np.take_along_axis(sub, nxt, axis=1), where=todo)
    sig[rows] = filled
    return sig


@pytest.mark.parametrize("k", [16, 128])
def test_sparse_densify_equals_the_row_version(k: int) -> None:
    rng = np.random.default_rng(1)
    sig = rng.integers(0, 1 << 31, size=(600, k), dtype=np.uint32)
    fill = rng.choice([0.0, 0.01, 0.5, 0.9, 1.0], size=600)  # share of bins left non-empty per row
    sig[rng.random((600, k)) >= fill[:, None]] = mh.EMPTY
    sig[::7, 3] = 5  # rows with a single non-empty bin go to the rotation fallback
    nonempty = (sig != mh.EMPTY).any(axis=1)
    assert (mh._densify(sig.copy(), nonempty, 3) == _old_densify(sig.copy(), nonempty, 3)).all()


def verdict_corpus() -> pl.DataFrame:
    """~3,000 documents: originals (ASCII, accented, CJK), exact copies (case and punctuation), near copies
    (one word in 300 changed), distant variants (40%), short, empty and null texts."""
    rng = np.random.default_rng(11)
    vocab = np.array(
        [f"w{i}" for i in range(20_000)] + [f"café{i}" for i in range(3000)] + [f"数据{i}集" for i in range(3000)]
    )
    rows: list[tuple[str, str | None]] = []
    for i in range(600):
        base = vocab[rng.integers(0, len(vocab) if i % 3 else 20_000, 300)]
        rows.append((f"o{i}", " ".join(base)))
        rows.append((f"e{i}", " ".join(base).upper() + " —!"))
        near = base.copy()
        near[rng.integers(0, 300)] = "zz"
        rows.append((f"n{i}", " ".join(near)))
        far = base.copy()
        far[rng.choice(300, 120, replace=False)] = vocab[rng.integers(0, len(vocab), 120)]
        rows.append((f"d{i}", " ".join(far)))
        rows.append((f"s{i}", " ".join(base[: i % 6])))
    rows += [("empty", ""), ("null", None), ("cjk", "中文。中文"), ("cjk2", "中文 中文")]
    order = rng.permutation(len(rows))
    return pl.DataFrame(rows, schema=["sample_id", "response"], orient="row")[order]


@pytest.mark.parametrize("kw", [{}, {"keep": "shortest"}])
def test_verdicts_equal_the_previous_word_hash(monkeypatch: pytest.MonkeyPatch, kw: dict) -> None:
    """Every row's verdict, cluster and kept id are those of the previous Polars-hash signature path."""
    df = verdict_corpus()
    cfg = DedupConfig(**kw)
    new = dedup_frame(df, cfg)
    monkeypatch.setattr(mh, "word_hashes", token_hashes)
    old = dedup_frame(df, cfg)
    cols = ["sample_id", "dedup_cluster_id", "dedup_cluster_size", "dedup_kept_sample_id", "reject_reasons"]
    assert_frame_equal(new.select(cols), old.select(cols))
    assert new["reject_reasons"].list.len().gt(0).sum() >= 1200
    # the corpus check inside `curate check` runs the same path: same verdicts
    got = DedupCheck(cfg).run(df.with_columns(pl.lit(True).alias("accepted")))
    assert got["reject_reasons"].to_list() == new["reject_reasons"].to_list()
