"""`curate check` with the format check over N samples of ~8 KB, and peak RSS on a large input.

Baseline in the same run: reading the same JSONL with plain ``polars.read_ndjson`` (no validation, no
quarantine, no checks, no writing) - the floor any JSONL-reading tool pays.

    python benchmarks/bench_check.py --samples 100000            # throughput
    python benchmarks/bench_check.py --gigabytes 2 --rss-only    # peak RSS for a 2 GB input
"""

from __future__ import annotations

import argparse
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
from _result import result  # noqa: E402 - benchmarks/ is the script's own folder

WORDS = [
    "so",
    "we",
    "need",
    "the",
    "sum",
    "of",
    "both",
    "terms",
    "then",
    "check",
    "the",
    "carry",
    "again",
    "and",
    "verify",
    "the",
    "result",
    "let",
    "me",
    "reconsider",
    "whether",
    "this",
    "approach",
    "handles",
    "the",
    "edge",
    "case",
    "properly",
]


def make_input(path: Path, n: int, size: int = 8192, seed: int = 0) -> int:
    rng = random.Random(seed)
    vocab = [" ".join(rng.choices(WORDS, k=12)) for _ in range(512)]
    written = 0
    with path.open("wb") as f:
        for i in range(n):
            body = []
            length = 0
            while length < size - 200:
                s = rng.choice(vocab)
                body.append(s)
                length += len(s) + 1
            kind = i % 10
            reasoning = "\n".join(body)
            if kind == 0:
                resp = reasoning  # truncated
            elif kind == 1:
                resp = f"<think>{reasoning}</think>\n"  # empty answer
            else:
                resp = f"<think>{reasoning}</think>\nThe answer is \\boxed{{{i % 97}}}."
            row = {
                "prompt_id": f"p{i // 8}",
                "task": "math",
                "prompt": f"What is {i}?",
                "response": resp,
                "reference": str(i % 97),
                "finish_reason": "stop",
            }
            line = orjson.dumps(row) + b"\n"
            f.write(line)
            written += len(line)
    return written


def peak_rss_mb_of(cmd: list[str]) -> tuple[float, float]:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, ru.ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=100_000)
    ap.add_argument("--gigabytes", type=float, default=0.0, help="also measure peak RSS on an input this large")
    ap.add_argument("--rss-only", action="store_true")
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-check-"))
    work.mkdir(parents=True, exist_ok=True)

    if not args.rss_only:
        inp = work / "samples.jsonl"
        size = make_input(inp, args.samples)
        print(f"input: {args.samples:,} samples, {size / 1e6:,.0f} MB")
        import polars as pl

        t0 = time.perf_counter()
        pl.read_ndjson(inp)
        base = time.perf_counter() - t0
        wall, _ = peak_rss_mb_of(
            [
                sys.executable,
                "-m",
                "curate.cli",
                "check",
                str(inp),
                "--out",
                str(work / "out.parquet"),
                "--checks",
                "format",
                "--json",
            ]
        )
        print(f"baseline polars.read_ndjson (read only): {args.samples / base:,.0f} samples/s")
        print(
            f"curate check --checks format:            {args.samples / wall:,.0f} samples/s "
            f"(wall {wall:.1f}s incl. interpreter start) ratio vs baseline {base / wall:.2f}x"
        )
        result(
            "check (format)",
            f"{args.samples:,} x 8 KB JSONL",
            args.samples / wall,
            args.samples / base,
            "samples/s",
            "polars.read_ndjson",
        )
    if args.gigabytes:
        big = work / "big.jsonl"
        n = int(args.gigabytes * 1e9 / 8300)
        size = make_input(big, n, seed=1)
        wall, rss = peak_rss_mb_of(
            [
                sys.executable,
                "-m",
                "curate.cli",
                "check",
                str(big),
                "--out",
                str(work / "big.parquet"),
                "--checks",
                "format",
                "--json",
            ]
        )
        print(
            f"large input: {size / 1e9:.2f} GB, {n:,} samples in {wall:.0f}s ({n / wall:,.0f}/s); "
            f"peak RSS {rss:,.0f} MB"
        )
        result(
            "check (format), large input",
            f"{size / 1e9:.1f} GB JSONL",
            n / wall,
            None,
            "samples/s",
            "-",
            peak_rss_mb=rss,
        )
        big.unlink()


if __name__ == "__main__":
    main()
