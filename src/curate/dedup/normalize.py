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

NORMALIZATION_VERSION = 1
_NON_WORD = r"[^\w]+"
_PROBES = ("curate", "dedup fingerprint", "ünïcode ça va", "")


def normalize_expr(expr: pl.Expr) -> pl.Expr:
    """Lowercase, collapse non-word runs to one space, strip (null becomes the empty string)."""
    return expr.fill_null("").str.to_lowercase().str.replace_all(_NON_WORD, " ").str.strip_chars(" ")


def normalize(texts: pl.Series) -> pl.Series:
    return pl.DataFrame({"t": texts}).select(normalize_expr(pl.col("t"))).to_series()


def hash_strings(texts: pl.Series) -> np.ndarray:
    """A uint64 hash per string (stable within one Polars version, see HASH_FINGERPRINT)."""
    return texts.hash(seed=0).to_numpy().astype(np.uint64, copy=False)


def exact_keys(texts: pl.Series) -> np.ndarray:
    """Hash of each normalized text: equal keys are exact duplicates up to case and punctuation."""
    return hash_strings(normalize(texts))


def token_hashes(texts: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """Hash every word of every text: (uint64 hashes of all words in order, int64 word count per text)."""
    df = pl.DataFrame({"t": texts}).select(normalize_expr(pl.col("t")).str.split(" ").alias("w"))
    # An empty text splits into [""]: it has no words.
    counts = df.select(pl.when(pl.col("w").list.first() == "").then(0).otherwise(pl.col("w").list.len()))
    words = df.select(pl.col("w").explode()).filter(pl.col("w") != "").to_series()
    return hash_strings(words), counts.to_series().to_numpy().astype(np.int64)


@functools.cache
def hash_fingerprint() -> str:
    """Identifies this build's string hash (changes if Polars changes its hash function)."""
    h = hash_strings(pl.Series(_PROBES, dtype=pl.String))
    return f"n{NORMALIZATION_VERSION}-" + "-".join(f"{int(x):016x}" for x in h)


HASH_FINGERPRINT = hash_fingerprint
