"""Throughput of the readability + language checks on ~8 KB R1-style traces, against langdetect.

    python benchmarks/bench_quality.py [--rows 4000] [--baseline-rows 40] [--threads 2]

Traces are built from the MATH-500 reference solutions shipped in curate/data (R1-style openers,
"Wait, let me check" asides, a blank line between paragraphs, ``</think>`` and a summary); 5% carry a
Chinese fragment, 2% a French sentence, 2% a repetition loop, so every code path runs. Our side runs
both checks over one Polars frame (Polars limited to ``--threads`` threads via POLARS_MAX_THREADS, set
before import). The baseline is the obvious implementation: split the same cleaned text into segments
and call langdetect on each one. Prints traces/s for both and the ratio.
"""

from __future__ import annotations

import argparse
import os
import sys


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=4000)
    ap.add_argument("--baseline-rows", type=int, default=40)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bytes", type=int, default=8192)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    os.environ["POLARS_MAX_THREADS"] = str(args.threads)

    import time

    import polars as pl

    from curate.quality import LanguageCheck, ReadabilityCheck
    from curate.quality._lid import langdetect_predict
    from curate.quality._synth import make_traces

    df = make_traces(args.rows, target_bytes=args.bytes, seed=0)
    mb = df["response"].str.len_bytes().sum() / 1e6
    print(f"{df.height} traces, {mb:.1f} MB, mean {mb * 1e6 / df.height:.0f} bytes; polars threads "
          f"{pl.thread_pool_size()}, cores {os.cpu_count()}")

    read, lang = ReadabilityCheck(), LanguageCheck()
    lang.run(df.head(10))  # load the fastText model outside the timing
    best = {"readability": 1e9, "lang": 1e9, "both": 1e9}
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        a = read.run(df)
        t1 = time.perf_counter()
        b = lang.run(a)
        t2 = time.perf_counter()
        best["readability"] = min(best["readability"], t1 - t0)
        best["lang"] = min(best["lang"], t2 - t1)
        best["both"] = min(best["both"], t2 - t0)
    for k, v in best.items():
        print(f"ours {k:12s}: {df.height / v:9.0f} traces/s  ({v:.3f} s)")
    reasons = b.select(pl.col("reject_reasons").explode().value_counts(sort=True)).unnest("reject_reasons")
    print("reason counts:", dict(zip(reasons[:, 0].to_list(), reasons[:, 1].to_list(), strict=True)))

    # Baseline: langdetect per segment (same segmentation, same cleaning), readability not included.
    from curate.quality import _patterns as P

    sub = df.head(args.baseline_rows)
    cleaned = pl.col("response").str.replace_all(P.STRIP_BLOCKS, " ").str.replace_all(P.STRIP_TOKENS, " ")
    segs = sub.select(cleaned.str.extract_all(P.SEGMENT).alias("s")).explode("s")["s"].drop_nulls()
    segs = [s.strip() for s in segs.to_list() if any(ch.isalpha() for ch in s)]
    t0 = time.perf_counter()
    langdetect_predict(segs)
    base = time.perf_counter() - t0
    base_rate = sub.height / base
    ours_rate = df.height / best["both"]
    print(f"baseline langdetect per segment: {base_rate:9.1f} traces/s ({len(segs)} segments, {base:.2f} s)")
    print(f"ratio ours (readability + lang) / baseline (lang only): {ours_rate / base_rate:.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
