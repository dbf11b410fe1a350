"""Dedup benchmark: curate's vectorized MinHash + LSH against datasketch and rensa, in one run.

    python benchmarks/bench_dedup.py --docs 100000 --words 2000          # speed + quality + memory
    python benchmarks/bench_dedup.py --spill --docs 10000000 --words 40  # bounded-memory band-table path

Corpus: random words from a 50k vocabulary, with planted duplicates: 1% exact copies (case/punctuation
changed), 1% near copies (1% of words replaced), 1% distant variants (40% replaced). The baselines (per
document: 5-gram shingles, MinHash(128).update_batch / RMinHash.update, LSH insert at threshold 0.8)
run on the first --baseline-docs documents; their rate is extrapolated to --docs and the script says so.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from itertools import combinations

import numpy as np
import polars as pl
from _result import result  # noqa: E402 - benchmarks/ is the script's own folder

from curate.dedup import DedupConfig, find_duplicates, sketch_frame
from curate.dedup.spill import BandSpill

NGRAM = 5


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_corpus(n: int, words: int, seed: int = 0) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Texts, kind per doc (0 unique, 1 exact copy, 2 near copy, 3 distant variant), source doc index."""
    rng = np.random.default_rng(seed)
    vocab = [f"w{i}" for i in range(50_000)]
    n_plant = max(1, n // 100)
    n_base = n - 3 * n_plant
    kind = np.zeros(n, dtype=np.int8)
    src = np.arange(n)
    texts: list[str] = []
    base_idx: list[np.ndarray] = []
    for _ in range(n_base):
        idx = rng.integers(0, len(vocab), words)
        base_idx.append(idx)
        texts.append(" ".join([vocab[i] for i in idx]))
    for k, frac in ((1, 0.0), (2, 0.01), (3, 0.40)):
        for _ in range(n_plant):
            s = int(rng.integers(0, n_base))
            idx = base_idx[s].copy()
            if frac:
                pos = rng.choice(words, max(1, int(words * frac)), replace=False)
                idx[pos] = rng.integers(0, len(vocab), len(pos))
            t = " ".join([vocab[i] for i in idx])
            texts.append(t.upper() + " !" if k == 1 else t)
            kind[len(texts) - 1], src[len(texts) - 1] = k, s
    return texts, kind, src


def shingles(text: str) -> list[str]:
    w = text.lower().split()
    return [" ".join(w[i : i + NGRAM]) for i in range(max(1, len(w) - NGRAM + 1))]


def bench_datasketch(texts: list[str]) -> float:
    from datasketch import MinHash, MinHashLSH

    t0 = time.perf_counter()
    lsh = MinHashLSH(threshold=0.8, num_perm=128)
    for i, t in enumerate(texts):
        m = MinHash(num_perm=128)
        m.update_batch([s.encode() for s in shingles(t)])
        lsh.insert(i, m)
    return len(texts) / (time.perf_counter() - t0)


def bench_rensa(texts: list[str]) -> float:
    from rensa import RMinHash, RMinHashLSH

    t0 = time.perf_counter()
    lsh = RMinHashLSH(threshold=0.8, num_perm=128, num_bands=16)
    for i, t in enumerate(texts):
        m = RMinHash(num_perm=128, seed=42)
        m.update(shingles(t))
        lsh.insert(i, m)
    return len(texts) / (time.perf_counter() - t0)


def brute_force(texts: list[str], cand: list[int], same: np.ndarray, thr: float) -> tuple[float, float, int]:
    """Precision and recall of 'same cluster' against exact 5-gram Jaccard >= thr over all pairs of cand."""
    sets = [np.unique(pl.Series(shingles(texts[i])).str.to_lowercase().hash().to_numpy()) for i in cand]
    tp = fp = fn = 0
    for a, b in combinations(range(len(cand)), 2):
        inter = len(np.intersect1d(sets[a], sets[b], assume_unique=True))
        j = inter / (len(sets[a]) + len(sets[b]) - inter)
        pred = bool(same[cand[a]] == same[cand[b]])
        tp += pred and j >= thr
        fp += pred and j < thr
        fn += (not pred) and j >= thr
    return tp / max(tp + fp, 1), tp / max(tp + fn, 1), tp + fn


def run_memory(args: argparse.Namespace) -> None:
    print(f"generating {args.docs:,} docs x {args.words} words ...", flush=True)
    t0 = time.perf_counter()
    texts, kind, src = make_corpus(args.docs, args.words)
    print(f"  generated in {time.perf_counter() - t0:.1f}s; RSS {rss_mb():.0f} MB", flush=True)
    df = pl.DataFrame({"sample_id": [str(i) for i in range(len(texts))], "response": texts})
    cfg = DedupConfig(threads=args.threads)
    base = rss_mb()
    t0 = time.perf_counter()
    sig, exact = sketch_frame(df, cfg)
    t_sig = time.perf_counter() - t0
    out = find_duplicates(df, cfg, sig, exact)
    t_all = time.perf_counter() - t0
    ours = len(texts) / t_all
    print(
        f"curate: signatures {t_sig:.1f}s + exact/LSH/verify/cluster {t_all - t_sig:.1f}s = {t_all:.1f}s "
        f"({ours:,.0f} docs/s, {args.threads} threads)"
    )
    print(
        f"  peak RSS {peak_mb():.0f} MB (RSS before dedup {base:.0f} MB, texts included); signatures "
        f"{sig.nbytes / 1e6:.0f} MB = {sig.nbytes / len(texts) * 1e6 / 1e9:.2f} GB per million docs"
    )

    # Quality on the planted duplicates.
    dup = out["reject_reasons"].list.len().gt(0).to_numpy()
    cluster = out["dedup_cluster_id"].to_numpy()
    for k, name in ((1, "exact copies"), (2, "near copies (1% words)"), (3, "distant variants (40%)")):
        m = kind == k
        merged = (cluster[m] == cluster[src[m]]).mean()
        print(f"  {name:26s}: merged with their source {merged:.4f} ({m.sum()} docs)")
    sources = np.zeros(len(texts), dtype=bool)
    sources[src[(kind == 1) | (kind == 2)]] = True
    wrong = int((dup & (kind == 0) & ~sources).sum())
    print(f"  unique docs (no planted copy) rejected: {wrong}")
    rng = np.random.default_rng(1)
    planted = np.flatnonzero(kind > 0)
    pick = rng.choice(planted, min(100, len(planted)), replace=False)
    cand = sorted(set(pick.tolist()) | set(src[pick].tolist()) | set(rng.choice(len(texts), 100).tolist()))
    p, r, pos = brute_force(texts, cand, cluster, 0.8)
    print(
        f"  vs brute-force Jaccard>=0.8 over all {len(cand) * (len(cand) - 1) // 2:,} pairs of "
        f"{len(cand)} docs: precision {p:.3f} recall {r:.3f} ({pos} true pairs)"
    )

    nb = min(args.baseline_docs, len(texts))
    ds = bench_datasketch(texts[:nb])
    print(
        f"datasketch update_batch + MinHashLSH: {ds:,.0f} docs/s (measured on {nb} docs, extrapolated: "
        f"{args.docs / ds:,.0f}s for {args.docs:,})"
    )
    rn = bench_rensa(texts[: min(len(texts), nb * 5)])
    print(f"rensa RMinHash + RMinHashLSH: {rn:,.0f} docs/s (measured on {min(len(texts), nb * 5)} docs)")
    print(f"RATIO curate / datasketch = {ours / ds:.1f}x; curate / rensa = {ours / rn:.1f}x")
    result(
        "dedup signatures + LSH",
        f"{len(texts):,} docs x {args.words} words",
        ours,
        ds,
        "docs/s",
        "datasketch update_batch + MinHashLSH",
        peak_rss_mb=peak_mb(),
        rensa=rn,
        ratio_rensa=ours / rn,
    )


def run_spill(args: argparse.Namespace) -> None:
    """Stream short docs through the on-disk band table; report time and RSS as it goes."""
    rng = np.random.default_rng(0)
    vocab = np.array([f"w{i}" for i in range(50_000)])
    cfg = DedupConfig(threads=args.threads)
    batch = args.batch
    with tempfile.TemporaryDirectory(dir=args.workdir) as d:
        spill = BandSpill(d, cfg, memory_limit=args.memory_limit)
        t0 = time.perf_counter()
        prev: list[str] = []
        for lo in range(0, args.docs, batch):
            n = min(batch, args.docs - lo)
            idx = rng.integers(0, len(vocab), (n, args.words))
            texts = pl.DataFrame({"w": vocab[idx].tolist()}).select(pl.col("w").list.join(" ")).to_series()
            if prev:  # plant 1% exact copies of the previous batch
                k = min(len(prev), max(1, n // 100))
                texts = pl.concat([texts.slice(0, n - k), pl.Series("w", prev[:k])])
            prev = texts.slice(0, max(1, batch // 100)).to_list()
            spill.add_texts(texts)
            if (lo // batch) % max(1, args.docs // batch // 10) == 0:
                print(
                    f"  {lo + n:,} docs sketched, {time.perf_counter() - t0:.0f}s, RSS {rss_mb():.0f} MB, "
                    f"peak {peak_mb():.0f} MB",
                    flush=True,
                )
        t1 = time.perf_counter()
        res = spill.resolve()
        t2 = time.perf_counter()
        print(
            f"spill: {res.n_docs:,} docs: sketch+write {t1 - t0:.0f}s, DuckDB band join + verify + cluster "
            f"{t2 - t1:.0f}s; {res.counts()}; peak RSS {peak_mb():.0f} MB (DuckDB memory_limit "
            f"{args.memory_limit})"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--quick", action="store_true", help="10k docs x 2k words")
    ap.add_argument("--words", type=int, default=2000)
    ap.add_argument("--baseline-docs", type=int, default=1000, help="datasketch subsample (rensa: 5x)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--spill", action="store_true", help="on-disk band-table path with short docs")
    ap.add_argument("--batch", type=int, default=200_000)
    ap.add_argument("--memory-limit", default="1GB")
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    if args.quick:
        args.docs = 10_000
    run_spill(args) if args.spill else run_memory(args)


if __name__ == "__main__":
    main()
