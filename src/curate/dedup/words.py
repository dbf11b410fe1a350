"""Word hashing over the raw UTF-8 bytes of a whole batch, in numpy: no Python loop per word or text.

The words are exactly those of :func:`curate.dedup.normalize.token_hashes` (lowercase, every maximal
run of ``\\w`` characters is a word); only the hash differs. Pure-ASCII texts (the common case) are
classified byte by byte through lookup tables; texts with any non-ASCII byte first go through the
Polars normalization (Unicode lowercase, non-word characters to spaces), after which every byte left
that is not an ASCII separator belongs to a word. Both kinds then share one pass over the bytes:

* word boundaries: a byte class table, one shift, ``flatnonzero``; text boundaries always cut;
* word hashes: each word's bytes read 8 at a time through an unaligned uint64 view of the buffer,
  masked to the word's length and folded with a splitmix64 finalizer, so the cost is per word, not
  per byte (words over 64 bytes, rare, go through xxh3 one by one).

The hash is a fixed function of the word's bytes (not Polars' build-dependent one), versioned by
:data:`WORD_HASH_VERSION`, which enters the index fingerprint.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import xxhash

from curate.dedup.normalize import _NON_WORD
from curate.native import kernels, string_buffer

WORD_HASH_VERSION = 1
# Text per batch: temporaries stay in cache (300-word texts: 155 MB/s a core in 0.4 MB batches, 106 in 3 MB)
BATCH_BYTES = 400_000
_LONG = 64  # words longer than this (bytes) are hashed with xxh3, one by one
_C = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


_MASK = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [(1 << 64) - 1], dtype=np.uint64)


def _fmix(x: np.ndarray) -> np.ndarray:
    x ^= x >> np.uint64(30)
    x *= _M1
    x ^= x >> np.uint64(27)
    x *= _M2
    x ^= x >> np.uint64(31)
    return x


def classify(data: np.ndarray, low: np.ndarray, isw: np.ndarray) -> None:
    """Into ``low`` the ASCII-lowercased bytes, into ``isw`` the word-byte mask: ``[0-9A-Za-z_]`` and every
    byte >= 0x80 (a few uint8 passes; fancy indexing through a 256-entry table is 3x slower in numpy)."""
    u = data | np.uint8(0x20)
    u -= np.uint8(ord("a"))
    letter = u < np.uint8(26)
    np.subtract(data, np.uint8(ord("0")), out=u)
    np.less(u, np.uint8(10), out=isw)
    isw |= letter
    isw |= data == np.uint8(ord("_"))
    isw |= data >= np.uint8(0x80)
    np.left_shift(letter.view(np.uint8), np.uint8(5), out=low)
    low |= data


def text_buffer(texts: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """(UTF-8 bytes of all texts, int64 offsets of each text, n + 1) with non-ASCII texts normalized by
    Polars first (so their bytes classify like ASCII ones)."""
    s = texts.cast(pl.String).fill_null("")
    data, offsets = string_buffer(s)
    if len(data) and data.max() >= 0x80:  # one reduction; the texts to normalize only when there are any
        nz = np.flatnonzero(np.diff(offsets) > 0)
        top = np.zeros(len(s), dtype=np.uint8)
        top[nz] = np.maximum.reduceat(data, offsets[nz])
        non_ascii = np.flatnonzero(top >= 0x80)
        fixed = s.gather(non_ascii).str.to_lowercase().str.replace_all(_NON_WORD, " ")
        data, offsets = string_buffer(s.scatter(non_ascii, fixed))
    return data, offsets


def word_hashes(texts: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """(uint64 hash of every word in order, int64 word count per text); same words as ``token_hashes``."""
    data, offsets = text_buffer(texts)
    n = len(offsets) - 1
    step = batch_docs(n, len(data))
    parts = [
        hash_words(data[offsets[lo] : offsets[min(lo + step, n)]], offsets[lo : lo + step + 1] - offsets[lo])
        for lo in range(0, n, step)
    ]
    if len(parts) == 1:
        return parts[0]
    return (
        np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.uint64),
        np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64),
    )


def batch_docs(n_docs: int, n_bytes: int) -> int:
    """Texts per batch: about BATCH_BYTES of text, 64 to 4096 texts."""
    return int(min(4096, max(64, BATCH_BYTES / max(n_bytes / max(n_docs, 1), 1.0))))


def _merge(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Sorted union of two sorted arrays with no common element (np.insert sorts its indices: 5x slower)."""
    out = np.empty(len(a) + len(b), dtype=a.dtype)
    at = np.searchsorted(a, b) + np.arange(len(b))
    rest = np.ones(len(out), dtype=bool)
    rest[at] = False
    out[at] = b
    out[rest] = a
    return out


def hash_words(data: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Word hashes and word counts of the texts ``data[offsets[i]:offsets[i + 1]]`` (compiled when built)."""
    k = kernels()
    if k is None:
        return hash_words_reference(data, offsets)
    data, offsets = np.ascontiguousarray(data, np.uint8), np.ascontiguousarray(offsets, np.int64)
    out = np.empty(len(data) // 2 + len(offsets), dtype=np.uint64)
    counts = np.empty(len(offsets) - 1, dtype=np.int64)
    n_words, long_words = k.hash_words(data, offsets, out, counts)
    h = out[:n_words]
    for i, s, e in long_words:  # words over _LONG bytes: xxh3 of the lowercased bytes, as below
        h[i] = xxhash.xxh3_64_intdigest(data[s:e].tobytes().lower())
    return h, counts


def hash_words_reference(data: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``hash_words`` in numpy: the reference of the compiled pass."""
    n_docs, size = len(offsets) - 1, len(data)
    if size == 0:
        return np.zeros(0, np.uint64), np.zeros(n_docs, np.int64)
    padded = np.empty(size + 8 + _LONG, dtype=np.uint8)
    padded[size:] = 0
    edge = np.empty(size + 2, dtype=bool)
    edge[0] = edge[-1] = False
    low, isw = padded[:size], edge[1:-1]
    classify(data, low, isw)
    flips = np.flatnonzero(edge[1:] != edge[:-1])  # alternately a word's start and its end
    starts, ends = flips[0::2], flips[1::2]
    cut = np.unique(offsets[1:-1])  # empty texts repeat an offset
    cut = cut[(cut > 0) & (cut < size)]
    cut = cut[isw[cut] & isw[cut - 1]]  # a word running over from one text into the next: split it
    if len(cut):
        starts, ends = _merge(starts, cut), _merge(ends, cut)
    counts = np.diff(np.searchsorted(starts, offsets)).astype(np.int64)
    length = ends - starts
    view = np.ndarray((size + _LONG,), dtype="<u8", buffer=padded.data, strides=(1,))  # unaligned windows
    # Up to 8 bytes: the bytes themselves (never 0 inside a word, so the value also fixes the length).
    h = view[starts]
    h &= _MASK[np.minimum(length, 8)]
    sel = np.flatnonzero(length > 8)
    if len(sel):  # longer words: 8 bytes at a time, folded with a finalizer
        hs, st, ln = h[sel], starts[sel], length[sel]
        for k in range(8, _LONG, 8):
            more = ln > k
            hs[more] = _fmix((hs[more] * _C) ^ (view[st[more] + k] & _MASK[np.minimum(ln[more] - k, 8)]))
        hs = _fmix(hs ^ ln.astype(np.uint64))
        h[sel] = hs
        long = np.flatnonzero(length > _LONG)
        if len(long):
            raw = low.tobytes()
            h[long] = [xxhash.xxh3_64_intdigest(raw[s:e]) for s, e in zip(starts[long], ends[long], strict=True)]
    return h, counts
