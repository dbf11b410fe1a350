"""Locality-sensitive hashing over MinHash signatures: bands, candidate pairs, verification, clusters.

A signature of ``b * r`` values is cut into ``b`` bands of ``r`` rows; each band is hashed to one uint64.
Two documents are candidates when any band hash is equal. Candidates are verified with the estimated
Jaccard similarity (share of equal signature positions) and the verified pairs are clustered with
connected components (union-find). Everything works on arrays of band hashes, so the same code serves
the in-memory path (Polars sort) and the on-disk path (DuckDB, see ``spill.py``).
"""

from __future__ import annotations

import functools

import numpy as np
import polars as pl

from curate.dedup.minhash import is_empty, mix64

_BAND_MUL = np.random.default_rng(20240601).integers(1, 1 << 63, size=64, dtype=np.uint64) | np.uint64(1)


@functools.cache
def optimal_bands(threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows) minimizing the weighted false-positive and false-negative areas, as datasketch does."""
    x = np.linspace(0.0, 1.0, 2001)
    best, arg = float("inf"), (1, num_perm)
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            p = 1.0 - (1.0 - x**r) ** b
            fp = np.trapezoid(np.where(x < threshold, p, 0.0), x)
            fn = np.trapezoid(np.where(x >= threshold, 1.0 - p, 0.0), x)
            err = float(fp_weight * fp + fn_weight * fn)
            if err < best:
                best, arg = err, (b, r)
    return arg


def band_hashes(sig: np.ndarray, bands: int, rows: int, salt: np.ndarray | None = None) -> np.ndarray:
    """uint64 array (documents, bands). ``salt`` (one uint64 per document) separates scopes: documents
    with different salts never share a band hash (used for per-prompt dedup)."""
    if bands * rows > sig.shape[1] or rows > len(_BAND_MUL):
        raise ValueError(f"{bands} bands x {rows} rows do not fit a signature of {sig.shape[1]}")
    s = sig[:, : bands * rows].reshape(sig.shape[0], bands, rows).transpose(2, 0, 1)  # (rows, docs, bands)
    h = np.zeros((sig.shape[0], bands), dtype=np.uint64)
    for j in range(rows):  # one contiguous (docs, bands) slice at a time
        h += s[j].astype(np.uint64) * _BAND_MUL[j]
    h += np.arange(bands, dtype=np.uint64)[None, :] * _BAND_MUL[-1]  # band i and band j never collide
    if salt is not None:
        h ^= mix64(salt.astype(np.uint64))[:, None]
    return mix64(h)


def band_table(band_h: np.ndarray, doc_ids: np.ndarray) -> pl.DataFrame:
    """Long form (band_id, band_hash, doc) of a band-hash matrix; band_hash is the uint64 bits as Int64."""
    n, b = band_h.shape
    return pl.DataFrame(
        {
            "band_id": np.tile(np.arange(b, dtype=np.int16), n),
            "band_hash": band_h.reshape(-1).view(np.int64),
            "doc": np.repeat(doc_ids.astype(np.int64), b),
        }
    )


EXACT_BAND = -1  # the band_id of a document's exact-duplicate key in a band table


def doc_bands(
    sig: np.ndarray, exact: np.ndarray, bands: int, rows: int, salt: np.ndarray | None = None
) -> pl.DataFrame:
    """The band table (band_id, band_hash, doc) of documents ``0..n-1``: their LSH bands (a document
    with no words has none) and, as band :data:`EXACT_BAND`, their exact-duplicate key (uint64 bits)."""
    live = np.flatnonzero(~is_empty(sig))
    n = len(exact)
    lsh = band_table(band_hashes(sig[live], bands, rows, None if salt is None else salt[live]), live)
    keys = pl.DataFrame(
        {
            "band_id": np.full(n, EXACT_BAND, np.int16),
            "band_hash": np.asarray(exact).view(np.int64),
            "doc": np.arange(n, dtype=np.int64),
        }
    )
    return pl.concat([lsh, keys])


def pairs_from_sorted(key_a: np.ndarray, key_b: np.ndarray, doc: np.ndarray) -> np.ndarray:
    """Candidate edges from rows sorted by (key_a, key_b, doc): each member of a bucket is paired with
    its predecessor (a chain) and with the bucket's first member (a star), so a bucket of m documents
    costs O(m) edges, not O(m^2), and stays connected. Returns unique (u < v) pairs, shape (E, 2)."""
    if len(doc) < 2:
        return np.zeros((0, 2), dtype=np.int64)
    same = (key_a[1:] == key_a[:-1]) & (key_b[1:] == key_b[:-1])
    idx = np.flatnonzero(same) + 1
    if not len(idx):
        return np.zeros((0, 2), dtype=np.int64)
    new_bucket = np.ones(len(doc), dtype=bool)
    new_bucket[1:] = ~same
    head = np.maximum.accumulate(np.where(new_bucket, np.arange(len(doc)), 0))
    u = np.concatenate([doc[idx - 1], doc[head[idx]]])
    v = np.concatenate([doc[idx], doc[idx]])
    e = np.stack([np.minimum(u, v), np.maximum(u, v)], axis=1)
    e = e[e[:, 0] != e[:, 1]]
    return np.unique(e, axis=0) if len(e) else e


def candidate_pairs(band_h: np.ndarray, doc_ids: np.ndarray | None = None) -> np.ndarray:
    """Pairs of documents sharing at least one band hash (in-memory, Polars sort)."""
    ids = np.arange(band_h.shape[0]) if doc_ids is None else doc_ids
    t = band_table(band_h, ids).sort(["band_id", "band_hash", "doc"])
    return pairs_from_sorted(t["band_id"].to_numpy(), t["band_hash"].to_numpy(), t["doc"].to_numpy())


def pair_jaccard(sig: np.ndarray, pairs: np.ndarray, chunk: int = 1 << 16) -> np.ndarray:
    """Estimated Jaccard of each pair (rows of ``sig``), in chunks to bound memory."""
    out = np.empty(len(pairs), dtype=np.float64)
    for i in range(0, len(pairs), chunk):
        p = pairs[i : i + chunk]
        out[i : i + chunk] = (sig[p[:, 0]] == sig[p[:, 1]]).mean(axis=1)
    return out


def components(n: int, edges: np.ndarray) -> np.ndarray:
    """Connected-component label per node (0..n-1) of an undirected edge list, components numbered in
    the order of their lowest node (as ``scipy.sparse.csgraph.connected_components`` numbers them).

    Vectorized union-find: each round points the root of every edge's larger end at the smaller root,
    then pointer jumping flattens the trees; a round that links nothing ends it. Rounds are few (a path
    collapses in one link and log-many jumps), and scipy.sparse (70 ms to import) is not needed."""
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    root = np.arange(n, dtype=np.int64)
    if not len(edges):
        return root
    u, v = edges[:, 0].astype(np.int64), edges[:, 1].astype(np.int64)
    while True:
        ru, rv = root[u], root[v]
        differ = ru != rv
        if not differ.any():
            break
        ru, rv = ru[differ], rv[differ]
        low = np.minimum(ru, rv)
        np.minimum.at(root, ru, low)
        np.minimum.at(root, rv, low)
        while True:  # pointer jumping: every node to its root
            up = root[root]
            if np.array_equal(up, root):
                break
            root = up
    return np.unique(root, return_inverse=True)[1].astype(np.int64)


def near_duplicate_edges(
    sig: np.ndarray, threshold: float, bands: int, rows: int, salt: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """All candidate pairs among non-empty documents and their estimated Jaccard."""
    live = np.flatnonzero(~is_empty(sig))
    bh = band_hashes(sig[live], bands, rows, None if salt is None else salt[live])
    pairs = candidate_pairs(bh, live)
    return pairs, pair_jaccard(sig, pairs)
