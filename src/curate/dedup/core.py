"""Exact and near-duplicate detection over a DataFrame: pure functions, no I/O.

Order of work: every text is normalized, hashed word by word and sketched (exact key + MinHash). Rows
with equal exact keys form exact groups; one row per exact group enters LSH; verified near pairs and
exact groups are merged into clusters (connected components). One row per cluster is kept by a
deterministic rule; the others get ``dedup.exact`` (same normalized text as the kept row) or
``dedup.near``. With ``scope="per-prompt"`` the prompt id salts every key, so only responses to the same
prompt are compared (collapsing near-identical samples of one prompt keeps its diversity).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

from curate.checks.base import REASONS, ConfigError, add_reasons
from curate.dedup.index import DedupIndex, IndexParams
from curate.dedup.lsh import components, near_duplicate_edges, optimal_bands, pairs_from_sorted
from curate.dedup.minhash import Scheme, mix64, sketch
from curate.dedup.normalize import hash_strings

KeepRule = Literal["first", "shortest", "best_score"]


@dataclass(frozen=True, slots=True)
class DedupConfig:
    text_column: str = "response"
    threshold: float = 0.8  # estimated Jaccard of word n-gram sets at or above which rows are near-duplicates
    num_perm: int = 128  # MinHash signature length
    ngram: int = 5  # words per shingle
    scope: Literal["global", "per-prompt"] = "global"
    keep: KeepRule = "first"  # representative of a cluster: first row, shortest text, or best score
    score_column: str | None = None  # for keep="best_score": higher is better
    prefer_accepted: bool = True  # a row with no reject reason so far wins over one already rejected
    near: bool = True  # False: exact duplicates only
    scheme: Scheme = "oph"  # MinHash scheme: one-permutation hashing, or num_perm hash functions
    seed: int = 1
    bands: int = 0  # LSH bands x rows; 0 = chosen from threshold and num_perm (as datasketch does)
    rows: int = 0
    # Weight of false positives vs false negatives when bands/rows are chosen. Candidates are verified,
    # so a false positive costs one comparison while a false negative is a duplicate let through:
    # 0.1 gives 14x9 at 0.8 (recall 0.999 at Jaccard 0.9); datasketch's 0.5 gives 9x13 (0.93).
    fp_weight: float = 0.1
    index_dir: str | None = None  # persistent index of published versions: rows found there -> dedup.seen
    batch_docs: int = 0  # texts per sketch batch; 0 = about 3 MB of text
    threads: int = 2

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold}")
        if self.keep == "best_score" and not self.score_column:
            raise ValueError("keep='best_score' needs score_column")
        if self.scope not in ("global", "per-prompt") or self.keep not in ("first", "shortest", "best_score"):
            raise ValueError(f"bad scope {self.scope!r} or keep {self.keep!r}")
        if (self.bands > 0) != (self.rows > 0) or self.bands * self.rows > self.num_perm:
            raise ValueError("bands and rows must both be set, with bands * rows <= num_perm")

    def band_rows(self) -> tuple[int, int]:
        if self.bands:
            return self.bands, self.rows
        return optimal_bands(self.threshold, self.num_perm, self.fp_weight, 1.0 - self.fp_weight)

    def index_params(self) -> IndexParams:
        b, r = self.band_rows()
        return IndexParams(self.num_perm, self.ngram, self.scheme, self.seed, b, r)


def sketch_frame(df: pl.DataFrame, cfg: DedupConfig) -> tuple[np.ndarray, np.ndarray]:
    """(signatures, exact keys) of ``cfg.text_column``."""
    if cfg.text_column not in df.columns:
        raise ConfigError(f"dedup: no column {cfg.text_column!r} in the input")
    return sketch(
        df[cfg.text_column].cast(pl.String),
        num_perm=cfg.num_perm,
        ngram=cfg.ngram,
        scheme=cfg.scheme,
        seed=cfg.seed,
        batch_docs=cfg.batch_docs,
        threads=cfg.threads,
    )


def _keep_order(df: pl.DataFrame, cfg: DedupConfig) -> np.ndarray:
    """Rank of each row as a representative (0 = best); ties go to the earlier row."""
    length = score = rejected = None
    if cfg.keep == "shortest":
        length = df[cfg.text_column].cast(pl.String).str.len_chars().fill_null(0).to_numpy()
    elif cfg.keep == "best_score":
        assert cfg.score_column is not None
        if cfg.score_column not in df.columns:
            raise ConfigError(f"dedup: keep=best_score but no column {cfg.score_column!r}")
        score = df[cfg.score_column].cast(pl.Float64).fill_null(float("-inf")).to_numpy()
    if cfg.prefer_accepted and REASONS in df.columns:
        rejected = df[REASONS].list.len().fill_null(0).to_numpy() > 0
    return keep_rank(df.height, length, score, rejected)


def keep_rank(
    n: int, length: np.ndarray | None = None, score: np.ndarray | None = None, rejected: np.ndarray | None = None
) -> np.ndarray:
    """Rank as a representative: not rejected first, then higher score or shorter text, then earlier."""
    keys: list[np.ndarray] = [np.arange(n)]  # lexsort: last key is primary
    if length is not None:
        keys.append(length)
    if score is not None:
        keys.append(-score)
    if rejected is not None:
        keys.append(rejected.astype(np.int8))
    order = np.lexsort(keys)
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    return rank


def find_duplicates(
    df: pl.DataFrame, cfg: DedupConfig, sig: np.ndarray, exact: np.ndarray, index: DedupIndex | None = None
) -> pl.DataFrame:
    """Add the dedup columns and reasons to ``df`` given its sketches (see ``dedup_frame``)."""
    n = df.height
    raw_exact, salt = exact, None
    if cfg.scope == "per-prompt":
        if "prompt_id" not in df.columns:
            raise ConfigError("dedup: scope=per-prompt needs a prompt_id column")
        salt = hash_strings(df["prompt_id"].cast(pl.String).fill_null(""))
        exact = mix64(exact ^ mix64(salt))
    rows = np.arange(n, dtype=np.int64)
    order = np.argsort(exact, kind="stable")
    ex_edges = pairs_from_sorted(exact[order], np.zeros(n, np.int8), rows[order])
    max_j = np.zeros(n)
    if len(ex_edges):
        max_j[ex_edges.ravel()] = 1.0
    edges = [ex_edges]
    if cfg.near and n > 1:
        first = np.ones(n, dtype=bool)  # one row per exact group enters LSH
        first[order[1:]] = exact[order[1:]] != exact[order[:-1]]
        reps = np.flatnonzero(first)
        b, r = cfg.band_rows()
        pairs, jac = near_duplicate_edges(sig[reps], cfg.threshold, b, r, None if salt is None else salt[reps])
        pairs = reps[pairs] if len(pairs) else pairs.reshape(0, 2)
        if len(pairs):
            np.maximum.at(max_j, pairs[:, 0], jac)
            np.maximum.at(max_j, pairs[:, 1], jac)
        edges.append(pairs[jac >= cfg.threshold])
    labels = components(n, np.concatenate(edges))
    rank = _keep_order(df, cfg)
    # Representative = best-ranked row of each component.
    by = np.lexsort((rank, labels))
    head = np.ones(n, dtype=bool)
    head[1:] = labels[by][1:] != labels[by][:-1]
    rep_of_label = np.zeros(labels.max() + 1 if n else 0, dtype=np.int64)
    rep_of_label[labels[by][head]] = by[head]
    kept = rep_of_label[labels]
    first_row = np.full(len(rep_of_label), n, dtype=np.int64)
    np.minimum.at(first_row, labels, rows)
    size = np.bincount(labels, minlength=len(rep_of_label))[labels]
    ids = df["sample_id"].cast(pl.String) if "sample_id" in df.columns else pl.Series(rows.astype(str))
    dup = kept != rows
    same_text = exact == exact[kept]
    out = df.with_columns(
        pl.Series("dedup_cluster_id", first_row[labels], pl.Int64),
        pl.Series("dedup_cluster_size", size, pl.Int32),
        ids.gather(kept).alias("dedup_kept_sample_id"),
        pl.Series("dedup_max_jaccard", max_j, pl.Float64),
        pl.Series("_exact", dup & same_text),
        pl.Series("_near", dup & ~same_text),
    )
    codes = {"dedup.exact": pl.col("_exact"), "dedup.near": pl.col("_near")}
    seen_ds: list[str | None] = [None] * n
    seen_id: list[str | None] = [None] * n
    if index is not None:
        hits = index.query(sig, raw_exact, cfg.threshold)
        seen_ds, seen_id = hits.dataset, hits.sample_id
    out = out.with_columns(
        pl.Series("dedup_seen_in", seen_ds, pl.String), pl.Series("dedup_seen_sample_id", seen_id, pl.String)
    )
    codes["dedup.seen"] = pl.col("dedup_seen_in").is_not_null()
    return add_reasons(out, codes).drop("_exact", "_near")


def dedup_frame(
    df: pl.DataFrame,
    cfg: DedupConfig | None = None,
    index: DedupIndex | None = None,
    sketched: tuple[np.ndarray, np.ndarray] | None = None,
) -> pl.DataFrame:
    """Mark exact and near duplicates (and rows already in ``index``) in ``df``; never drops a row.
    ``sketched``: the (signatures, exact keys) of ``df``'s texts when they were computed already."""
    cfg = cfg or DedupConfig()
    sig, exact = sketched if sketched is not None else sketch_frame(df, cfg)
    return find_duplicates(df, cfg, sig, exact, index)
