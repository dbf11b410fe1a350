"""Throughput of the readability + language checks on ~8 KB R1-style traces, against langdetect.

    python benchmarks/bench_quality.py [--rows 4000] [--baseline-rows 40] [--threads 2] [--calibrate]

Traces are built from the MATH-500 reference solutions shipped in curate/data (R1-style openers,
"Wait, let me check" asides, a blank line between paragraphs, ``</think>`` and a summary); 5% carry a
Chinese fragment, 2% a French sentence, 2% a repetition loop, so every code path runs. Our side runs
both checks over one Polars frame (Polars limited to ``--threads`` threads via POLARS_MAX_THREADS, set
before import). The baseline is the obvious implementation: split the same cleaned text into segments
and call langdetect on each one. Prints traces/s for both and the ratio (wall clock and, since the
machine may be shared, process CPU time too). ``--calibrate`` also prints the feature quantiles that
justify the default thresholds (shipped reference solutions vs. synthetic clean and looping traces).
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
    ap.add_argument("--calibrate", action="store_true")
    ap.add_argument("--quick", action="store_true", help="small workload (for benchmarks/run_all.py)")
    args = ap.parse_args()
    if args.quick:
        args.rows, args.baseline_rows, args.repeat = 1000, 10, 2
    os.environ["POLARS_MAX_THREADS"] = str(args.threads)

    import time

    import polars as pl

    from curate.quality import LanguageCheck, ReadabilityCheck
    from curate.quality._lid import langdetect_predict
    from curate.testing.traces import make_traces

    df = make_traces(args.rows, target_bytes=args.bytes, seed=0)
    mb = df["response"].str.len_bytes().sum() / 1e6
    print(
        f"{df.height} traces, {mb:.1f} MB, mean {mb * 1e6 / df.height:.0f} bytes; polars threads "
        f"{pl.thread_pool_size()}, cores {os.cpu_count()}"
    )

    read, lang = ReadabilityCheck(), LanguageCheck()
    lang.run(df.head(10))  # load the fastText model outside the timing
    best = {"readability": 1e9, "lang": 1e9, "both": 1e9}
    cpu = {"readability": 1e9, "lang": 1e9, "both": 1e9}
    for _ in range(args.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        a = read.run(df)
        t1, c1 = time.perf_counter(), time.process_time()
        b = lang.run(a)
        t2, c2 = time.perf_counter(), time.process_time()
        for k, w, c in (("readability", t1 - t0, c1 - c0), ("lang", t2 - t1, c2 - c1), ("both", t2 - t0, c2 - c0)):
            best[k], cpu[k] = min(best[k], w), min(cpu[k], c)
    for k, v in best.items():
        print(
            f"ours {k:12s}: {df.height / v:9.0f} traces/s wall ({v:.3f} s), CPU {cpu[k]:.3f} s "
            f"= {df.height / cpu[k]:.0f} traces per CPU-second"
        )
    with open("/proc/loadavg") if os.path.exists("/proc/loadavg") else open(os.devnull) as f:
        print("load average:", f.read().strip() or "n/a")
    reasons = b.select(pl.col("reject_reasons").explode().value_counts(sort=True)).unnest("reject_reasons")
    print("reason counts:", dict(zip(reasons[:, 0].to_list(), reasons[:, 1].to_list(), strict=True)))

    # Baseline: langdetect per segment (same segmentation, same cleaning), readability not included.
    from curate.quality.language import _clean_segments

    sub = df.head(args.baseline_rows)
    segs = _clean_segments(sub["response"]).alias("s").explode().drop_nulls()
    segs = [s.strip() for s in segs.to_list() if any(ch.isalpha() for ch in s)]
    t0 = time.perf_counter()
    langdetect_predict(segs)
    base = time.perf_counter() - t0
    base_rate = sub.height / base
    ours_rate = df.height / best["both"]
    print(f"baseline langdetect per segment: {base_rate:9.1f} traces/s ({len(segs)} segments, {base:.2f} s)")
    print(f"ratio ours (readability + lang) / baseline (lang only): {ours_rate / base_rate:.0f}x")
    import json
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        "RESULT "
        + json.dumps(
            {
                "stage": "quality",
                "workload": f"readability+lang, {df.height} x {args.bytes // 1024} KB traces",
                "ours": ours_rate,
                "baseline": base_rate,
                "unit": "traces/s",
                "baseline_name": "langdetect per segment",
                "ratio": ours_rate / base_rate,
                "peak_rss_mb": rss,
            }
        )
    )
    if args.calibrate:
        calibrate(b)
    return 0


def calibrate(synthetic: object) -> None:
    import json
    from importlib.resources import files

    import polars as pl

    from curate.quality import LanguageCheck, ReadabilityCheck

    assert isinstance(synthetic, pl.DataFrame)
    refs: list[str] = []
    for name, key in (("math500.jsonl", "solution"), ("aime24.jsonl", "solution"), ("gsm8k_test.jsonl", "answer")):
        with (files("curate") / "data" / "benchmarks" / name).open(encoding="utf-8") as f:
            refs += [json.loads(line).get(key) or "" for line in f if line.strip()]
    ref = LanguageCheck().run(ReadabilityCheck().run(pl.DataFrame({"response": refs, "task": ["math"] * len(refs)})))
    groups = {
        f"reference solutions ({ref.height})": ref,
        "synthetic clean": synthetic.filter(pl.col("defect").is_null()),
        "synthetic loop": synthetic.filter(pl.col("defect") == "loop"),
        "synthetic chinese": synthetic.filter(pl.col("defect") == "chinese"),
        "synthetic french": synthetic.filter(pl.col("defect") == "french"),
    }
    feats = [
        "readability_longest_paragraph_words",
        "readability_repeat_line_frac",
        "readability_ngram_repeat_frac",
        "readability_compression_ratio",
        "readability_junk_run",
        "lang_target_share",
    ]
    for name, d in groups.items():
        print(f"\n{name}: {d.height} rows; quantiles p50 / p90 / p99 / max (lang share: min / p1 / p10 / p50)")
        for c in feats:
            s = d[c].drop_nulls()
            qs = (0.0, 0.01, 0.1, 0.5) if c == "lang_target_share" else (0.5, 0.9, 0.99, 1.0)
            vals = [round(float(s.quantile(q) or 0), 3) for q in qs] if len(s) else []
            print(f"  {c:38s} {vals}")
        counts = d["reject_reasons"].explode().drop_nulls().value_counts(sort=True)
        print("  reasons:", dict(zip(counts[:, 0].to_list(), counts[:, 1].to_list(), strict=True)))


if __name__ == "__main__":
    sys.exit(main())
