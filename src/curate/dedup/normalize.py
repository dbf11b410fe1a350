"""Text normalization and word hashing, vectorized over a whole column.

Every text goes through the same normal form before it is hashed: lowercase, every run of non-word
characters (punctuation, whitespace, markup) collapsed to one space. Words are hashed by Polars in
native code, many threads at once; nothing loops over words in Python.

Polars only promises its ``hash`` stable within one Polars version. Persisted hashes (the cross-version
index) therefore record :data:`HASH_FINGERPRINT`, computed from fixed probe strings, and refuse to be
compared with hashes from a build whose fingerprint differs instead of silently matching nothing.
"""

from __future__ import annotations

import functools

import numpy as np
import polars as pl

NORMALIZATION_VERSION = 2  # 2: MinHash words hashed by dedup.words (a fixed function, not Polars' hash)
# Anything but word characters and plain spaces becomes a space; runs of spaces only make empty words,
# which are dropped. (Replacing every single space by regex is 4x slower than this on real text.)
_NON_WORD = r"[^\w ]+"
_PROBES = ("curate", "dedup fingerprint", "ünïcode ça va", "")
_K = np.uint64(0x9E3779B97F4A7C15)


def normalize_expr(expr: pl.Expr) -> pl.Expr:
    """Lowercase, non-word characters to spaces, runs of spaces collapsed, stripped (null -> "")."""
    return (
        expr.fill_null("")
        .str.to_lowercase()
        .str.replace_all(_NON_WORD, " ")
        .str.replace_all(" {2,}", " ")
        .str.strip_chars(" ")
    )


def normalize(texts: pl.Series) -> pl.Series:
    return pl.DataFrame({"t": texts}).select(normalize_expr(pl.col("t"))).to_series()


def hash_strings(texts: pl.Series) -> np.ndarray:
    """A uint64 hash per string (stable within one Polars version, see hash_fingerprint)."""
    return texts.hash(seed=0).to_numpy().astype(np.uint64, copy=False)


def token_hashes(texts: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """Hash every word of every text: (uint64 hashes of all words in order, int64 word count per text)."""
    words = (
        pl.DataFrame({"t": texts})
        .select(
            pl.col("t").fill_null("").str.to_lowercase().str.replace_all(_NON_WORD, " ").str.split(" ").alias("w"),
            pl.int_range(pl.len(), dtype=pl.UInt32).alias("r"),
        )
        .explode("w")
        .filter(pl.col("w") != "")
        .select(pl.col("w").hash(seed=0), "r")
    )
    counts = np.bincount(words["r"].to_numpy(), minlength=len(texts)).astype(np.int64)
    return words["w"].to_numpy().astype(np.uint64, copy=False), counts


def exact_keys_from_tokens(tokens: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """A uint64 key per text from its word hashes: equal word sequences (after normalization) collide.

    Polynomial hash sum(t_i * K^i) per text, segment-summed with wrapping uint64 arithmetic.
    """
    n_docs = len(counts)
    out = np.zeros(n_docs, dtype=np.uint64)
    if len(tokens):
        starts = np.zeros(n_docs, dtype=np.int64)
        np.cumsum(counts[:-1], out=starts[1:])
        pos = np.arange(len(tokens), dtype=np.int64) - np.repeat(starts, counts)
        powers = np.cumprod(np.full(int(counts.max()), _K, dtype=np.uint64))
        nz = np.flatnonzero(counts)
        out[nz] = np.add.reduceat(tokens * powers[pos], starts[nz])
    out ^= counts.astype(np.uint64) * np.uint64(0xD6E8FEB86659FD93)
    return _mix(out)


def exact_keys(texts: pl.Series) -> np.ndarray:
    """Key of each normalized text: equal keys are exact duplicates up to case, punctuation, spacing."""
    return exact_keys_from_tokens(*token_hashes(texts))


def _mix(x: np.ndarray) -> np.ndarray:
    x = x ^ (x >> np.uint64(31))
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(29)
    return x


@functools.cache
def hash_fingerprint() -> str:
    """Identifies this build's string hash (changes if Polars changes its hash function)."""
    h = hash_strings(pl.Series(_PROBES, dtype=pl.String))
    return f"n{NORMALIZATION_VERSION}-" + "-".join(f"{int(x):016x}" for x in h)
